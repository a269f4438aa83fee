"""Builds the guest's boot files: Debian's own kernel (fetched with `apt-get download`), an
initramfs with busybox, the kernel modules asked for and this machine's Python; cached by inputs.

Nothing here needs root or a mount: the cpio archive is written by `Cpio`, module
dependencies are read from the modules' own `.modinfo`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import io
import json
import marshal
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERNEL_META_PACKAGE = "linux-image-amd64"  # Debian's "current kernel" package for amd64
BUSYBOX = Path("/bin/busybox")  # busybox-static: one static binary, no libraries
KEEP_IMAGES = 6  # images kept in the cache (specs of several test modules, a few builds)
# Bump when the layout of the image changes in a way the input digest cannot see.
FORMAT = 1

# Left out unless an import in the spec loads them: tests, GUI and terminal libraries, CJK
# codecs, NIS (which alone pulls in Kerberos), old databases; and the bulkiest top-level
# modules no test program runs.
STDLIB_SKIP_EXTENSIONS = (
    "_tkinter",
    "_test",
    "_ctypes_test",
    "xxlimited",
    "xxsubtype",
    "nis",
    "_curses",
    "readline",
    "_dbm",
    "_gdbm",
    "_codecs_",
    "_crypt",
    "ossaudiodev",
    "spwd",
    "audioop",
)
STDLIB_SKIP_MODULES = frozenset({"turtle", "pydoc", "_pydecimal", "doctest", "pdb"})
# What a guest's Python can import from the standard library by default (and whatever these
# import): enough for the seat's outbox, MQTT over TCP and small test programs.
DEFAULT_PYTHON_IMPORTS = (
    "argparse",
    "asyncio",
    "dataclasses",
    "hashlib",
    "json",
    "logging",
    "random",
    "secrets",
    "selectors",
    "socket",
    "sqlite3",
    "ssl",
    "struct",
    "subprocess",
    "threading",
    "uuid",
)


class GuestUnavailable(Exception):
    """The guest cannot be built here: says what is missing and how to get it."""


def cache_root() -> Path:
    """`$SEATBOX_GUEST_CACHE`, else `$XDG_CACHE_HOME/seatbox-guest`, else ~/.cache/..."""
    explicit = os.environ.get("SEATBOX_GUEST_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seatbox-guest"


# --- the kernel -------------------------------------------------------------------------------


def kernel_deb() -> Path:
    """The kernel package: `$SEATBOX_GUEST_KERNEL_DEB`, or the version `linux-image-amd64`
    depends on, downloaded once into the cache; a cached one when apt cannot answer."""
    explicit = os.environ.get("SEATBOX_GUEST_KERNEL_DEB")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise GuestUnavailable(f"SEATBOX_GUEST_KERNEL_DEB={explicit}: no such file")
        return path
    debs = cache_root() / "debs"
    cached = sorted(debs.glob("linux-image-*-amd64_*.deb"), key=lambda p: p.stat().st_mtime)
    package = _current_kernel_package()
    if package is None and not cached and os.geteuid() == 0 and shutil.which("apt-get"):
        # A fresh machine may have no package lists yet (as after `make debs-test` found
        # everything installed): fetch them once, as `make` would.
        subprocess.run(
            ["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-qq"],
            capture_output=True,
            timeout=600,
        )
        package = _current_kernel_package()
    if package is None:
        if cached:
            return cached[-1]
        raise GuestUnavailable(
            f"no Debian kernel: `apt-cache depends {KERNEL_META_PACKAGE}` names no kernel "
            "package (run `apt-get update`, or set SEATBOX_GUEST_KERNEL_DEB to a "
            "linux-image-*-amd64 .deb)"
        )
    mine = [p for p in cached if p.name.startswith(package + "_")]
    if mine:
        return mine[-1]
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=debs) as scratch:
        os.chmod(scratch, 0o755)  # apt's sandbox user must be able to write there
        try:
            done = subprocess.run(
                ["apt-get", "download", "-q", package],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            done = subprocess.CompletedProcess([], 1, "", str(err))
        got = list(Path(scratch).glob(f"{package}_*.deb"))
        if done.returncode != 0 or not got:
            if cached:
                return cached[-1]
            raise GuestUnavailable(
                f"no Debian kernel: `apt-get download {package}` failed "
                f"({(done.stderr or done.stdout).strip()[-300:]}); set "
                "SEATBOX_GUEST_KERNEL_DEB to a linux-image-*-amd64 .deb"
            )
        target = debs / got[0].name
        got[0].replace(target)
    return target


def _current_kernel_package() -> str | None:
    try:
        out = subprocess.run(
            ["apt-cache", "depends", KERNEL_META_PACKAGE],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"^\s*Depends:\s*(linux-image-[0-9][^\s]*-amd64)\s*$", out, re.M)
    return found.group(1) if found else None


@dataclass(frozen=True)
class Kernel:
    version: str  # e.g. 6.1.0-57-amd64
    vmlinuz: Path
    tree: Path  # extracted package root (boot/, lib/modules/<version>/)

    @property
    def modules_dir(self) -> Path:
        return self.tree / "lib" / "modules" / self.version


def extract_kernel(deb: Path, into: Path) -> Kernel:
    into.mkdir(parents=True, exist_ok=True)
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(into)], stdin=tar.stdout, capture_output=True)
    tar.wait()
    if tar.returncode != 0 or untar.returncode != 0:
        raise GuestUnavailable(f"cannot unpack {deb}: {untar.stderr.decode()[-300:]}")
    images = sorted((into / "boot").glob("vmlinuz-*"))
    if not images:
        raise GuestUnavailable(f"{deb} holds no boot/vmlinuz-*")
    version = images[-1].name.removeprefix("vmlinuz-")
    return Kernel(version, images[-1], into)


def _modinfo(path: Path) -> dict[str, list[str]]:
    """The `key=value` strings of a module's .modinfo section (NUL-separated)."""
    info: dict[str, list[str]] = {}
    for raw in re.findall(rb"(?<=\0)(depends|softdep|alias)=([^\0]*)", path.read_bytes()):
        info.setdefault(raw[0].decode(), []).append(raw[1].decode())
    return info


def _norm(name: str) -> str:
    return name.replace("-", "_")


def module_closure(kernel: Kernel, wanted: Sequence[str]) -> list[Path]:
    """The .ko files for `wanted` and everything they depend on, dependencies first.
    Names built into the kernel are skipped; an unknown name is an error."""
    index = {_norm(p.name.removesuffix(".ko")): p for p in kernel.modules_dir.rglob("*.ko")}
    builtin_file = kernel.modules_dir / "modules.builtin"
    builtin = {
        _norm(Path(line).name.removesuffix(".ko"))
        for line in builtin_file.read_text().split()
        if line
    }
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = _norm(name)
        if name in seen or name in builtin:
            return
        if name not in index:
            raise GuestUnavailable(
                f"kernel {kernel.version} has no module {name!r} (wanted by {' -> '.join(chain)})"
            )
        seen.add(name)
        info = _modinfo(index[name])
        for deps in info.get("depends", []):
            for dep in filter(None, deps.split(",")):
                visit(dep, (*chain, name))
        order.append(index[name])

    for name in wanted:
        visit(name, ("spec",))
    return order


# --- this machine's Python ----------------------------------------------------------------------


def _ldd(paths: Iterable[Path]) -> set[Path]:
    """Shared libraries (and the ELF interpreter) the given binaries load, as ldd resolves."""
    found: set[Path] = set()
    for path in paths:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if match:
                found.add(Path(match.group(1)))
    return found


def python_files(imports: Sequence[str]) -> tuple[Path, dict[str, Path]]:
    """(interpreter path, {guest path: host path}) for the Python running this code: its
    binary, the standard-library modules that `imports` load (sources and their bytecode) and
    the shared libraries they need, at the same absolute paths as here, so the interpreter
    finds its home unchanged. Importing over a whole stdlib would cost seconds of boot."""
    base = Path(sys.base_prefix)
    binary = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    stdlib = Path(sysconfig.get_paths(vars={"installed_base": str(base)})["stdlib"])
    probe = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]: importlib.import_module(name)\n"
        "for m in list(sys.modules.values()):\n"
        "    f = getattr(m, '__file__', None)\n"
        "    if f: print(f)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *imports], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise GuestUnavailable(f"cannot import {' '.join(imports)} here: {done.stderr[-500:]}")
    loaded = {Path(line) for line in done.stdout.splitlines() if line}
    # The codecs are looked up by name at run time: take the whole (small) package.
    loaded |= set((stdlib / "encodings").glob("*.py"))
    files: dict[str, Path] = {str(binary): binary}
    tag = sys.implementation.cache_tag
    for path in sorted(loaded):
        if not path.is_relative_to(stdlib) or "site-packages" in path.parts:
            continue
        files[str(path)] = path
        cached = path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc"
        if path.suffix == ".py" and cached.exists():
            files[str(cached)] = cached
    # Modules imported lazily (argparse imports shutil when it formats help, ...): every other
    # top-level module as bytecode without its source (6 MB), every extension module whose
    # libraries are here.
    for path in sorted(stdlib.glob("*.py")):
        cached = stdlib / "__pycache__" / f"{path.stem}.{tag}.pyc"
        if str(path) not in files and cached.exists() and path.stem not in STDLIB_SKIP_MODULES:
            files[str(stdlib / f"{path.stem}.pyc")] = cached
    dynload = stdlib / "lib-dynload"
    for path in sorted(dynload.glob("*.so")):
        if not path.name.startswith(STDLIB_SKIP_EXTENSIONS):
            files.setdefault(str(path), path)
    extensions = [Path(p) for p in files if p.endswith(".so")]
    for lib in _ldd([binary, *extensions]):
        files[str(lib)] = Path(os.path.realpath(lib))
    return binary, files


# --- the cpio archive (newc), written without root ----------------------------------------------


class Cpio:
    """A `newc` cpio archive as the kernel's initramfs unpacker reads it."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._ino = 1000
        self._dirs: set[str] = set()

    def _header(self, name: str, mode: int, size: int, mtime: int = 0, rdev: int = 0) -> None:
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = [self._ino, mode, 0, 0, 1, mtime, size, 0, 0, rdev >> 8, rdev & 0xFF]
        head = b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
        head += f"{len(encoded):08x}".encode() + b"00000000"
        self._out.write(head + encoded)
        self._pad()

    def _pad(self) -> None:
        self._out.write(b"\0" * (-self._out.tell() % 4))

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        path = path.strip("/")
        if not path or path in self._dirs:
            return
        if "/" in path:
            self.mkdir(str(Path(path).parent))
        self._dirs.add(path)
        self._header(path, stat.S_IFDIR | mode, 0)

    def file(self, path: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
        path = path.strip("/")
        self.mkdir(str(Path(path).parent))
        self._header(path, stat.S_IFREG | mode, len(data), mtime)
        self._out.write(data)
        self._pad()

    def copy(self, path: str, source: Path) -> None:
        info = source.stat()
        # mtime kept: the stdlib's .pyc files are valid only next to sources of the same mtime.
        self.file(path, source.read_bytes(), stat.S_IMODE(info.st_mode), int(info.st_mtime))

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self.mkdir(str(Path(path).parent))
        data = target.encode()
        self._header(path, stat.S_IFLNK | 0o777, len(data))
        self._out.write(data)
        self._pad()

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        path = path.strip("/")
        self.mkdir(str(Path(path).parent))
        self._header(path, stat.S_IFCHR | mode, 0, rdev=(major << 8) | minor)

    def finish(self) -> bytes:
        self._header("TRAILER!!!", 0, 0)
        return self._out.getvalue()


def job_archive(files: Mapping[str, bytes | Path]) -> bytes:
    """A small archive laid over the base image for one boot (the kernel unpacks
    concatenated archives in order)."""
    archive = Cpio()
    for path, content in sorted(files.items()):
        if isinstance(content, Path):
            archive.copy(path, content)
        else:
            mode = 0o755 if content.startswith(b"#!") else 0o644
            archive.file(path, content, mode)
    return archive.finish()


def python_sources(sources: Mapping[str, Path]) -> dict[str, bytes]:
    """Job files for Python sources ({guest path: host .py file, or a package directory}),
    each with its bytecode compiled here: compiling in the emulated guest costs seconds.
    The bytecode is hash-based and unchecked, so file times do not matter."""
    files: dict[str, bytes] = {}
    for guest_path, source in sources.items():
        pairs = (
            [(f"{guest_path}/{p.relative_to(source)}", p) for p in sorted(source.rglob("*.py"))]
            if source.is_dir()
            else [(guest_path, source)]
        )
        for target, path in pairs:
            text = path.read_bytes()
            files[target] = text
            code = compile(text, target, "exec", dont_inherit=True)
            pyc = importlib.util.cache_from_source(target)
            header = importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little")
            header += importlib.util.source_hash(text)
            files[pyc] = header + marshal.dumps(code)
    return files


# --- the image ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuestSpec:
    """What goes into a guest image. `modules` are loaded at boot, in this order (with their
    dependencies first); `python` adds this machine's Python at its own path, with the
    standard-library modules `python_imports` load (other modules come with each boot's files)."""

    modules: tuple[str, ...] = ()
    python: bool = True
    python_imports: tuple[str, ...] = DEFAULT_PYTHON_IMPORTS


@dataclass(frozen=True)
class GuestImage:
    kernel: Path  # vmlinuz
    initrd: Path  # gzip'd cpio
    kernel_version: str
    python: str | None  # interpreter path inside the guest
    sizes: Mapping[str, int]  # bytes: initrd (compressed), initrd_raw, python_raw, modules_raw

    @classmethod
    def load(cls, directory: Path) -> GuestImage:
        meta = json.loads((directory / "image.json").read_text())
        return cls(
            directory / "vmlinuz",
            directory / "initrd.gz",
            meta["kernel_version"],
            meta["python"],
            meta["sizes"],
        )


def _digest(spec: GuestSpec, deb: Path) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([FORMAT, spec.modules, spec.python, spec.python_imports]).encode())
    deb_info = deb.stat()
    h.update(f"{deb.name}:{deb_info.st_size}".encode())
    for part in (BUSYBOX, Path(__file__), HERE / "init.sh"):
        info = part.stat()
        h.update(f"{part}:{info.st_size}:{info.st_mtime_ns}".encode())
        if part.suffix in (".py", ".sh"):
            h.update(part.read_bytes())
    if spec.python:
        binary = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
        h.update(f"{binary}:{sys.version}:{binary.stat().st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def build_image(spec: GuestSpec) -> GuestImage:
    """The image for `spec`, built once and cached (key: kernel package, spec, busybox,
    Python, this builder)."""
    if not BUSYBOX.exists():
        raise GuestUnavailable(f"{BUSYBOX} missing: apt-get install busybox-static")
    deb = kernel_deb()
    key = _digest(spec, deb)
    target = cache_root() / "images" / key
    if (target / "image.json").exists():
        os.utime(target)  # in use: pruned last
        return GuestImage.load(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        work = Path(scratch)
        kernel = extract_kernel(deb, work / "kernel")
        archive = Cpio()
        for name in ("proc", "sys", "dev", "tmp", "run", "mnt", "root", "etc", "var/tmp"):
            archive.mkdir(name)
        archive.chardev("dev/console", 5, 1)
        archive.chardev("dev/null", 1, 3, 0o666)
        archive.file("init", (HERE / "init.sh").read_bytes(), 0o755)
        archive.copy("bin/busybox", BUSYBOX)
        for applet in _busybox_applets():
            if applet != "bin/busybox":
                archive.symlink(applet, "/bin/busybox")
        archive.file("etc/hosts", b"127.0.0.1 localhost\n10.0.2.2 host\n")
        archive.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        archive.file("etc/group", b"root:x:0:\n")

        modules = module_closure(kernel, spec.modules)
        modules_raw = 0
        guest_modules = []
        for module in modules:
            rel = module.relative_to(kernel.tree)
            archive.copy(str(rel), module)
            guest_modules.append("/" + str(rel))
            modules_raw += module.stat().st_size
        for name in ("modules.builtin", "modules.order", "modules.builtin.modinfo"):
            source = kernel.modules_dir / name
            if source.exists():
                archive.copy(f"lib/modules/{kernel.version}/{name}", source)
        # modules.dep etc. for busybox modprobe (a job may load more of those shipped here).
        depmod_files = _depmod(kernel, modules, work / "depmod")
        for name, data in depmod_files.items():
            archive.file(f"lib/modules/{kernel.version}/{name}", data)
        archive.file("etc/guest/modules", "".join(f"{m}\n" for m in guest_modules).encode())

        python = None
        python_raw = 0
        if spec.python:
            binary, files = python_files(spec.python_imports)
            for guest_path, host_path in sorted(files.items()):
                source = _stripped(host_path, work / "stripped")
                archive.copy(guest_path, source)
                python_raw += source.stat().st_size
            python = str(binary)
            archive.symlink("usr/bin/python3", python)
        raw = archive.finish()
        packed = gzip.compress(raw, compresslevel=6, mtime=0)
        # Each boot's job archive is appended: the kernel looks for it at a 4-byte boundary
        # and skips the zeros before it.
        packed += b"\0" * (-len(packed) % 4)
        staging = work / "image"
        staging.mkdir()
        shutil.copy2(kernel.vmlinuz, staging / "vmlinuz")
        (staging / "initrd.gz").write_bytes(packed)
        sizes = {
            "initrd": len(packed),
            "initrd_raw": len(raw),
            "python_raw": python_raw,
            "modules_raw": modules_raw,
            "vmlinuz": kernel.vmlinuz.stat().st_size,
        }
        meta = {
            "kernel_version": kernel.version,
            "kernel_deb": deb.name,
            "python": python,
            "sizes": sizes,
            "modules": spec.modules,
        }
        (staging / "image.json").write_text(json.dumps(meta, indent=1))
        # Built meanwhile by another process: use theirs.
        with contextlib.suppress(OSError):
            staging.rename(target)
    _prune(target.parent, keep=KEEP_IMAGES)
    return GuestImage.load(target)


def _prune(images: Path, keep: int) -> None:
    """Delete all but the `keep` most recently used images (each is ~22 MB; every change to
    the builder or the host's Python makes a new one)."""
    built = sorted(
        (p for p in images.iterdir() if (p / "image.json").exists()),
        key=lambda p: p.stat().st_mtime,
    )
    for old in built[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _stripped(path: Path, scratch: Path) -> Path:
    """A copy of a shared object without debug sections when `strip` is here (libpython is
    23 MB with them, 4 MB without), else the file itself."""
    strip = shutil.which("strip")
    if strip is None or not (
        path.suffix == ".so" or ".so." in path.name or os.access(path, os.X_OK)
    ):
        return path
    if path.read_bytes()[:4] != b"\x7fELF":
        return path
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / f"{len(list(scratch.iterdir()))}-{path.name}"
    done = subprocess.run(
        [strip, "--strip-debug", "-o", str(target), str(path)], capture_output=True
    )
    if done.returncode != 0:
        return path
    os.utime(target, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    return target


def _busybox_applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def _depmod(kernel: Kernel, modules: Sequence[Path], root: Path) -> dict[str, bytes]:
    """modules.dep and friends for the modules in the image (empty without `depmod`)."""
    depmod = shutil.which("depmod") or ("/sbin/depmod" if Path("/sbin/depmod").exists() else None)
    if depmod is None:
        return {}
    moddir = root / "lib" / "modules" / kernel.version
    for module in modules:
        dest = root / module.relative_to(kernel.tree)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(module, dest)
    for name in ("modules.builtin", "modules.order", "modules.builtin.modinfo"):
        if (kernel.modules_dir / name).exists():
            shutil.copy(kernel.modules_dir / name, moddir / name)
    done = subprocess.run([depmod, "-b", str(root), kernel.version], capture_output=True, text=True)
    if done.returncode != 0:
        return {}
    wanted = ("modules.dep", "modules.alias", "modules.softdep", "modules.symbols")
    return {name: (moddir / name).read_bytes() for name in wanted if (moddir / name).exists()}
