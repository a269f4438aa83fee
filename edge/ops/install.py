"""Installing seatbox on a box (or into a scratch root for images): files, venv, user, units.

Standard library only, so `sudo make install` runs it with the system python before the venv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge.base.errors import SeatboxError

SOURCE_DIR = Path(__file__).resolve().parents[2]
PREFIX = Path("opt/seatbox")
VENV = PREFIX / "venv"
SHARE = PREFIX / "share"
MANIFEST = SHARE / "installed-files"
VENV_STAMP = ".seatbox-source"
CONFIG_DIR = Path("etc/seatbox")
STATE_DIR = Path("var/lib/seatbox")
UNIT_DIR = Path("etc/systemd/system")
UNIT = "seatbox.service"
GADGET_UNIT = "seatbox-gadget.service"
WANTS_LINK = UNIT_DIR / "multi-user.target.wants" / UNIT
UDEV_DIR = Path("etc/udev/rules.d")
TMPFILES = Path("etc/tmpfiles.d/seatbox.conf")
SYSUSERS = Path("etc/sysusers.d/seatbox.conf")
USER = "seatbox"
# Groups of the device nodes the service opens (see systemd/seatbox.sysusers).
DEVICE_GROUPS = ("audio", "dialout")

# Folders and their modes; owners are set by systemd-tmpfiles on a real root.
DIRS = {
    CONFIG_DIR: 0o750,
    CONFIG_DIR / "profiles": 0o755,
    STATE_DIR: 0o750,
    STATE_DIR / "tapes": 0o750,
}

# What goes into the package (the venv stamp hashes these, so an unchanged tree is not reinstalled).
PACKAGE_GLOBS = (
    "pyproject.toml",
    "README.md",
    "edge/**/*",
    "drivers/**/*",
    "dsp/**/*",
    "floor/**/*",
)


class InstallError(SeatboxError):
    """A step of the install failed; the message says which and what to do."""


@dataclass
class Report:
    """What an install or uninstall did, one line per change, for the person running it."""

    root: Path
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def change(self, verb: str, path: Path | str) -> None:
        self.changes.append(f"{verb:9} {path}")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def lines(self) -> list[str]:
        out = list(self.changes) or ["nothing to change: already installed as shipped"]
        return out + [f"note: {text}" for text in self.notes]


@dataclass(frozen=True)
class Options:
    root: Path = Path("/")
    source: Path = SOURCE_DIR
    venv: bool = True
    python: str = sys.executable

    @property
    def real_root(self) -> bool:
        """Installing onto the running system (not a DESTDIR for packaging or images)."""
        return self.root.resolve() == Path("/")


# --- small idempotent file operations -----------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_dir(report: Report, root: Path, rel: Path, mode: int) -> None:
    path = root / rel
    if not path.is_dir():
        path.mkdir(parents=True, mode=mode)
        os.chmod(path, mode)
        report.change("created", "/" / rel)
    elif stat.S_IMODE(path.stat().st_mode) != mode:
        os.chmod(path, mode)
        report.change("chmod", f"/{rel} {mode:04o}")


def ensure_file(report: Report, root: Path, rel: Path, content: bytes, mode: int = 0o644) -> bool:
    """Write the file only when its content or mode differ; True when it changed."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and not path.is_symlink() and path.read_bytes() == content:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
            report.change("chmod", f"/{rel} {mode:04o}")
            return True
        return False
    existed = path.exists()
    tmp = path.with_name(f".{path.name}.seatbox-new")
    tmp.write_bytes(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)  # atomic: a power cut leaves the old or the new file, never half
    report.change("updated" if existed else "installed", "/" / rel)
    return True


def ensure_symlink(report: Report, root: Path, rel: Path, target: str) -> None:
    path = root / rel
    if path.is_symlink() and os.readlink(path) == target:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)
    report.change("linked", f"/{rel} -> {target}")


def remove_path(report: Report, root: Path, rel: Path) -> None:
    path = root / rel
    if path.is_symlink() or path.is_file():
        path.unlink()
        report.change("removed", "/" / rel)
    elif path.is_dir():
        shutil.rmtree(path)
        report.change("removed", f"/{rel}/")


# --- what is shipped ----------------------------------------------------------------------


@dataclass(frozen=True)
class Shipped:
    """A file from the source tree and where it goes (relative to the root)."""

    source: Path
    target: Path
    mode: int = 0o644


def shipped_files(source: Path) -> list[Shipped]:
    """Units, udev rules, tmpfiles, sysusers and docs; every `systemd/*.rules` is a udev rule."""
    systemd = source / "systemd"
    files = [
        Shipped(systemd / "seatbox.service", UNIT_DIR / UNIT),
        # Installed, not enabled: only a bridged seat runs it (docs/bridge.md).
        Shipped(systemd / GADGET_UNIT, UNIT_DIR / GADGET_UNIT),
        Shipped(systemd / "seatbox.tmpfiles", TMPFILES),
        Shipped(systemd / "seatbox.sysusers", SYSUSERS),
    ]
    files += [Shipped(rule, UDEV_DIR / rule.name) for rule in sorted(systemd.glob("*.rules"))]
    for doc in ("docs/operations.md", "docs/bridge.md", "README.md"):
        if (source / doc).is_file():
            files.append(Shipped(source / doc, SHARE / "doc" / Path(doc).name))
    config = source / "config"
    if config.is_dir():
        for path in sorted(p for p in config.rglob("*") if p.is_file()):
            files.append(Shipped(path, SHARE / "config" / path.relative_to(config)))
    missing = [str(f.source) for f in files if not f.source.is_file()]
    if missing:
        raise InstallError(f"source tree {source} is incomplete: missing {', '.join(missing)}")
    return files


def package_digest(source: Path) -> str:
    """Digest of everything `pip install .` would package: equal digest, nothing to reinstall."""
    digest = hashlib.sha256()
    paths: set[Path] = set()
    for pattern in PACKAGE_GLOBS:
        paths.update(
            p for p in source.glob(pattern) if p.is_file() and "__pycache__" not in p.parts
        )
    for path in sorted(paths):
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


# --- steps --------------------------------------------------------------------------------


def _run(report: Report, argv: Sequence[str], what: str) -> None:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise InstallError(f"{what}: {argv[0]} not found") from None
    if result.returncode != 0:
        raise InstallError(
            f"{what} failed ({' '.join(argv)}, exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}"
        )
    report.change("ran", " ".join(argv))


def install_venv(report: Report, opts: Options) -> None:
    """A venv of its own under /opt/seatbox/venv with seatbox installed from the source tree."""
    venv = opts.root / VENV
    stamp = venv / VENV_STAMP
    digest = package_digest(opts.source)
    python = venv / "bin" / "python"
    if python.exists() and stamp.is_file() and stamp.read_text().strip() == digest:
        return
    if not python.exists():
        _run(report, [opts.python, "-m", "venv", str(venv)], "creating the venv")
    _run(
        report,
        [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", "--upgrade", "pip"],
        "upgrading pip in the venv",
    )
    _run(
        report,
        [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", str(opts.source)],
        "installing seatbox into the venv (pip install .)",
    )
    stamp.write_text(digest + "\n")
    if not opts.real_root:
        report.note(
            f"the venv under {venv} has scripts pointing at that path: for an image, run "
            "the install inside the image (chroot) so the venv sits at /opt/seatbox/venv"
        )


def install_profiles(report: Report, opts: Options) -> None:
    """Shipped profiles go to /etc/seatbox/profiles; a site's edits to one are kept.

    A profile that differs from what the previous install shipped was edited on site: it is
    left alone and the new shipped version is written beside it as NAME.toml.dist.
    """
    source = opts.source / "config" / "profiles"
    if not source.is_dir():
        report.note(f"{source} not found: no profiles installed")
        return
    previous = opts.root / SHARE / "config" / "profiles"
    for shipped in sorted(source.glob("*.toml")):
        rel = CONFIG_DIR / "profiles" / shipped.name
        target = opts.root / rel
        new = shipped.read_bytes()
        old_shipped = previous / shipped.name
        site_edited = (
            target.is_file()
            and target.read_bytes() != new
            and not (old_shipped.is_file() and old_shipped.read_bytes() == target.read_bytes())
        )
        if site_edited:
            if ensure_file(report, opts.root, rel.with_name(shipped.name + ".dist"), new):
                report.note(
                    f"/{rel} was edited on this box: kept; shipped version: {rel.name}.dist"
                )
        else:
            ensure_file(report, opts.root, rel, new)


def install_config_example(report: Report, opts: Options) -> None:
    example = opts.source / "config" / "seatbox.example.toml"
    if example.is_file():
        ensure_file(report, opts.root, CONFIG_DIR / "seatbox.example.toml", example.read_bytes())
    config = opts.root / CONFIG_DIR / "seatbox.toml"
    if not config.exists():
        report.note(
            "no /etc/seatbox/seatbox.toml yet: the service stays inactive until "
            "`seatbox provision --site S --seat ID --broker URL ...` writes it"
        )


def create_user(report: Report, opts: Options) -> None:
    if not opts.real_root:
        report.note(
            "scratch root: no user created; a real install runs "
            "`systemd-sysusers /etc/sysusers.d/seatbox.conf` (system user and group seatbox, "
            "member of audio and dialout)"
        )
        return
    import pwd

    try:
        pwd.getpwnam(USER)
        return
    except KeyError:
        pass
    if shutil.which("systemd-sysusers"):
        _run(report, ["systemd-sysusers", str(Path("/") / SYSUSERS)], "creating user seatbox")
        return
    _run(
        report,
        [
            "useradd",
            "--system",
            "--user-group",
            "--home-dir",
            "/var/lib/seatbox",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--groups",
            ",".join(DEVICE_GROUPS),
            USER,
        ],
        "creating user seatbox",
    )


def create_dirs(report: Report, opts: Options) -> None:
    for rel, mode in DIRS.items():
        ensure_dir(report, opts.root, rel, mode)
    if opts.real_root:
        if shutil.which("systemd-tmpfiles"):
            # Sets owners (seatbox) exactly as the tmpfiles.d entry says; idempotent.
            result = subprocess.run(
                ["systemd-tmpfiles", "--create", str(Path("/") / TMPFILES)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise InstallError(f"systemd-tmpfiles --create failed: {result.stderr.strip()}")
        else:
            _chown_state_dirs(report)
    else:
        report.note(
            "scratch root: folders created without owners; a real install runs "
            "`systemd-tmpfiles --create /etc/tmpfiles.d/seatbox.conf` (owner seatbox)"
        )


def _chown_state_dirs(report: Report) -> None:
    import grp
    import pwd

    uid = pwd.getpwnam(USER).pw_uid
    gid = grp.getgrnam(USER).gr_gid
    for rel in (STATE_DIR, STATE_DIR / "tapes"):
        path = Path("/") / rel
        info = path.stat()
        if (info.st_uid, info.st_gid) != (uid, gid):
            os.chown(path, uid, gid)
            report.change("chown", f"{path} seatbox:seatbox")
    config = Path("/") / CONFIG_DIR
    if config.stat().st_gid != gid:
        os.chown(config, 0, gid)
        report.change("chown", f"{config} root:seatbox")


def reload_system(report: Report, opts: Options, changed: bool) -> None:
    if not opts.real_root:
        report.note(
            "scratch root: no daemon-reload / udev reload; on a real root these run "
            "`systemctl daemon-reload` and `udevadm control --reload`"
        )
        return
    if not changed:
        return
    if Path("/run/systemd/system").is_dir():
        _run(report, ["systemctl", "daemon-reload"], "reloading systemd")
    else:
        report.note("systemd is not running here (chroot or container): no daemon-reload")
    if shutil.which("udevadm") and Path("/run/udev/control").exists():
        _run(report, ["udevadm", "control", "--reload"], "reloading udev rules")
        # Existing headset and radar nodes get the new names and permissions now, not at replug.
        _run(
            report,
            [
                "udevadm",
                "trigger",
                "--action=change",
                "--subsystem-match=hidraw",
                "--subsystem-match=tty",
            ],
            "re-applying udev rules",
        )


def write_manifest(report: Report, opts: Options, paths: Iterable[Path]) -> None:
    """Everything installed outside /opt/seatbox, so uninstall removes exactly that."""
    text = "".join(f"/{p}\n" for p in sorted(set(paths)))
    ensure_file(report, opts.root, MANIFEST, text.encode())


def install(opts: Options) -> Report:
    report = Report(opts.root)
    if not (opts.source / "pyproject.toml").is_file():
        raise InstallError(f"{opts.source} is not a seatbox source tree (no pyproject.toml)")
    files = shipped_files(opts.source)
    opts.root.mkdir(parents=True, exist_ok=True)
    create_user(report, opts)
    before = len(report.changes)
    if opts.venv:
        install_venv(report, opts)
    else:
        report.note("--no-venv: /opt/seatbox/venv not created or updated")
    # The previous shipped profiles (in share/) decide what was edited on site: before share/.
    install_profiles(report, opts)
    for item in files:
        ensure_file(report, opts.root, item.target, item.source.read_bytes(), item.mode)
    install_config_example(report, opts)
    # Enabled = started at every boot, so a box comes back by itself after a power cut.
    ensure_symlink(report, opts.root, WANTS_LINK, f"/{UNIT_DIR / UNIT}")
    create_dirs(report, opts)
    outside = [f.target for f in files if not f.target.is_relative_to(PREFIX)] + [WANTS_LINK]
    write_manifest(report, opts, outside)
    reload_system(report, opts, changed=len(report.changes) > before)
    return report


def uninstall(root: Path, source: Path = SOURCE_DIR) -> Report:
    """Remove the application, units, rules; keep /etc/seatbox (config) and /var/lib/seatbox."""
    report = Report(root)
    real_root = root.resolve() == Path("/")
    manifest = root / MANIFEST
    if manifest.is_file():
        targets = [
            Path(line.strip().lstrip("/"))
            for line in manifest.read_text().splitlines()
            if line.strip()
        ]
    else:
        targets = [f.target for f in shipped_files(source) if not f.target.is_relative_to(PREFIX)]
        targets.append(WANTS_LINK)
    if real_root and Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "disable", "--now", UNIT], capture_output=True, check=False)
    for rel in targets:
        remove_path(report, root, rel)
    remove_path(report, root, PREFIX)
    if real_root and report.changes:
        if Path("/run/systemd/system").is_dir():
            _run(report, ["systemctl", "daemon-reload"], "reloading systemd")
        if shutil.which("udevadm") and Path("/run/udev/control").exists():
            _run(report, ["udevadm", "control", "--reload"], "reloading udev rules")
    report.note("kept /etc/seatbox (config) and /var/lib/seatbox (outbox, dose, tapes)")
    if real_root:
        report.note("kept the system user seatbox (files in the kept folders belong to it)")
    return report


# --- command line (also behind `seatbox install` / `seatbox uninstall`) --------------------


def add_arguments(parser: argparse.ArgumentParser, with_venv: bool) -> None:
    parser.add_argument(
        "--root",
        default=os.environ.get("DESTDIR") or "/",
        help="install under this folder instead of / (packaging, images); default $DESTDIR or /",
    )
    parser.add_argument(
        "--source", default=str(SOURCE_DIR), help="seatbox source tree (default: this one)"
    )
    if with_venv:
        parser.add_argument(
            "--no-venv",
            action="store_true",
            help="do not create or update /opt/seatbox/venv (files, units and rules only)",
        )


def run(action: str, args: argparse.Namespace) -> int:
    """Install or uninstall and print what changed; an InstallError says what failed."""
    root = Path(args.root)
    if root.resolve() == Path("/") and os.geteuid() != 0:
        error = InstallError("installing onto / needs root: run `sudo make install`")
        error.prefix = "seatbox: "
        raise error
    if action == "install":
        report = install(Options(root=root, source=Path(args.source), venv=not args.no_venv))
    else:
        report = uninstall(root, Path(args.source))
    for line in report.lines():
        print(line)
    if action == "install" and root.resolve() == Path("/"):
        print("next: seatbox provision ... then `systemctl start seatbox`; see docs/operations.md")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.ops.install", description=__doc__)
    verbs = parser.add_subparsers(dest="action", required=True)
    add_arguments(verbs.add_parser("install", help="install or upgrade"), with_venv=True)
    add_arguments(verbs.add_parser("uninstall", help="remove all but config and state"), False)
    args = parser.parse_args(argv)
    try:
        return run(args.action, args)
    except InstallError as exc:
        # The line `seatbox install` prints (edge.cli), without importing the CLI's packages.
        prefix = f"seatbox {args.action}: " if exc.prefix is None else exc.prefix
        print(f"{prefix}{exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
