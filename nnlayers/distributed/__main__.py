"""``python -m nnlayers.distributed``: the expected scaling of the reference nets (``cost.py``)."""
from .cost import scaling_table

print(scaling_table())
