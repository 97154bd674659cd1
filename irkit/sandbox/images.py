"""The Compose practice stack's images, built here from Debian's packages and cached.

No image registry is reachable from where the kit runs, so nothing is pulled: a Debian root made
by `debootstrap --variant=minbase` is imported as the base image, and each service's image is an
ordinary Dockerfile (in `irkit/sandbox/compose/`) on top of it, built with the host's network
(apt and pip inside a build need it: the engine has no bridge).

Every image is tagged by a hash of what it is made from (its Dockerfile and build context, the
base's recipe), and saved as a tarball in the cache folder once built. An engine that lacks an
image loads it from there: only the first `up` on a machine builds (about four minutes); every
later one, and every new engine (the tests'), takes seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path

from irkit.errors import SandboxError

SUITE = "bookworm"
BASE_REPOSITORY = "irkit-practice/debian"
REPOSITORY = "irkit-practice"
# What makes the base image: a change here makes a new one (and a new tag).
BASE_RECIPE = f"debootstrap --variant=minbase {SUITE}; no docs, man pages, locales; apt emptied"
# Kept out of every package installed later: the images are loaded into every new engine (the
# tests'), and their size is the time that takes.
DPKG_EXCLUDES = """\
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
"""
# The services' images: the folder of each under irkit/sandbox/compose/.
SERVICES = ("postgres", "redis", "prometheus", "himalytix")
# The app's requirements, at the versions installed beside the kit: the container runs what the
# tests run. psycopg's binary build brings its own libpq.
APP_REQUIREMENTS = (
    "django",
    "django-health-check",
    "django-prometheus",
    "gunicorn",
    "celery",
    "redis",
    "psycopg",
    "psycopg-binary",
    # kombu's Redis transport imports it without declaring it.
    "packaging",
)
BUILD_TIMEOUT_S = 900

Log = Callable[[str], None]


def cache_dir() -> Path:
    """IRKIT_IMAGE_CACHE, else $XDG_CACHE_HOME/irkit/images, else ~/.cache/irkit/images."""
    if chosen := os.environ.get("IRKIT_IMAGE_CACHE"):
        return Path(chosen)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "irkit" / "images"


def mirror() -> str:
    """The Debian mirror to bootstrap from: IRKIT_DEBIAN_MIRROR, else the first of the machine's
    own apt sources that serves the suite (one-line sources.list or deb822 .sources)."""
    if chosen := os.environ.get("IRKIT_DEBIAN_MIRROR"):
        return chosen
    for uri in _apt_sources(Path("/etc/apt")):
        return uri
    raise SandboxError(
        f"no Debian mirror for {SUITE} in /etc/apt/sources.list or /etc/apt/sources.list.d/; "
        "set IRKIT_DEBIAN_MIRROR to one"
    )


def _apt_sources(etc_apt: Path) -> Iterator[str]:
    """The URIs of the `deb` sources that list the suite itself (not -security, -updates)."""
    one_line = etc_apt / "sources.list"
    files = [one_line, *sorted((etc_apt / "sources.list.d").glob("*.list"))]
    for path in files:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                    yield words[1]
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", path.read_text()):
                fields = _deb822(stanza)
                if (
                    "deb" in fields.get("types", "").split()
                    and SUITE in fields.get("suites", "").split()
                ):
                    yield from fields.get("uris", "").split()[:1]


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in stanza.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


@dataclass(frozen=True)
class Image:
    """One image: its tag (a hash of what it is made from) and its tarball in the cache."""

    name: str
    tag: str

    @property
    def ref(self) -> str:
        repository = BASE_REPOSITORY if self.name == "debian" else f"{REPOSITORY}/{self.name}"
        return f"{repository}:{self.tag}"

    def tarball(self, cache: Path) -> Path:
        return cache / f"{self.name}-{self.tag}.tar"


def base_image() -> Image:
    digest = hashlib.sha256(BASE_RECIPE.encode()).hexdigest()[:12]
    return Image("debian", f"{SUITE}-{digest}")


def requirements() -> str:
    """The app's requirements pinned to the versions beside the kit."""
    lines = []
    for name in APP_REQUIREMENTS:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise SandboxError(
                f"{name} is not installed beside the kit: pip install -e '.[sandbox]'"
            ) from None
    return "\n".join(lines) + "\n"


def build_context(service: str, into: Path) -> Path:
    """Assemble the build context of `service` in `into` (its Dockerfile and files; for the app,
    its code and requirements too), without the git history the app image gets."""
    source = resources.files("irkit.sandbox").joinpath("compose", service)
    with resources.as_file(source) as folder:
        shutil.copytree(folder, into, ignore=shutil.ignore_patterns("__pycache__"))
    if service == "prometheus":
        rules = resources.files("irkit.sandbox").joinpath("alert_rules.yml").read_text()
        (into / "alert_rules.yml").write_text(rules)
    if service == "himalytix":
        app = into / "app"
        package = app / "irkit" / "sandbox"
        package.mkdir(parents=True)
        # The app imports nothing of irkit but itself and its Celery tasks: empty packages above.
        (app / "irkit" / "__init__.py").write_text("")
        (package / "__init__.py").write_text("")
        with resources.as_file(resources.files("irkit.sandbox")) as sandbox:
            shutil.copytree(
                sandbox / "himalytix",
                package / "himalytix",
                ignore=shutil.ignore_patterns("__pycache__", ".state"),
            )
            shutil.copy(sandbox / "tasks.py", package / "tasks.py")
        for name in ("manage.py", "dashboard.py"):
            (into / name).rename(app / name)
        (into / "requirements.txt").write_text(requirements())
    return into


def context_hash(folder: Path, *extra: str) -> str:
    digest = hashlib.sha256()
    for text in extra:
        digest.update(text.encode() + b"\0")
    # Not hashed: the app's git history (made from the rest) and the wheels (named by the pinned
    # requirements, which are).
    files = folder.rglob("*")
    for path in sorted(p for p in files if p.is_file() and not {".git", "wheels"} & set(p.parts)):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _git_commit(app: Path, revision_of: str) -> str:
    """/app as a git repository with one commit, so `git rev-parse HEAD` in the web container
    answers as in production. Dated by the content hash, not the clock: the same code gives the
    same commit, which is also the image's revision label."""
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="irkit",
        GIT_AUTHOR_EMAIL="irkit@localhost",
        GIT_COMMITTER_NAME="irkit",
        GIT_COMMITTER_EMAIL="irkit@localhost",
        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
    )
    for args in (
        ["init", "--quiet", "--initial-branch=main"],
        ["add", "--all"],
        ["commit", "--quiet", "--no-gpg-sign", "-m", f"Practice Himalytix {revision_of}"],
    ):
        _run(["git", "-C", str(app), *args], "git", env=env)
    return _run(["git", "-C", str(app), "rev-parse", "HEAD"], "git", env=env).strip()


def _download_wheels(requirements: Path, into: Path) -> None:
    """The app's wheels, fetched by the kit's own pip (as configured on this machine: its index,
    proxy and certificates) for the Python the image has (Debian bookworm's 3.11.2)."""
    arch = platform.machine()
    platforms = [f"manylinux{tag}_{arch}" for tag in ("2014", "_2_17", "_2_28")]
    _run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "--python-version", "3.11.2",
            *(f"--platform={name}" for name in platforms),
            "--dest", str(into), "--requirement", str(requirements),
            # pip judges markers by its own interpreter: redis needs this below Python 3.11.3.
            "async-timeout>=4.0.3",
        ],
        "pip download (the app's requirements)",
    )  # fmt: skip


def _slim(root: Path) -> None:
    """What a container never reads: apt's downloads and lists, documentation, translations."""
    (root / "etc/dpkg/dpkg.cfg.d/irkit-slim").write_text(DPKG_EXCLUDES)
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (root / leftover).glob("*"):
            if path.is_file():
                path.unlink()
    for folder in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"):
        for path in (root / folder).glob("*"):
            if path.name == "locale.alias":
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _run(args: list[str], what: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, capture_output=True, text=True, check=False, env=env, timeout=BUILD_TIMEOUT_S
    )
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise SandboxError(f"{what} failed: {tail}")
    return done.stdout


def _bundle(cache: Path, refs: list[str]) -> Path:
    """The four images in one tarball: their common layers (the base) are stored and loaded
    once."""
    return cache / f"stack-{hashlib.sha256(' '.join(refs).encode()).hexdigest()[:12]}.tar"


def cached(cache: Path | None = None) -> bool:
    """Whether the images of this version of the stack are in the cache already."""
    base = base_image()
    with tempfile.TemporaryDirectory(prefix="irkit-images-") as scratch:
        refs = [
            Image(s, context_hash(build_context(s, Path(scratch) / s), base.ref)).ref
            for s in SERVICES
        ]
    return _bundle(cache or cache_dir(), refs).exists()


@contextlib.contextmanager
def _build_lock(cache: Path, log: Log) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".build.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another build of the stack's images into {cache}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepare(log: Log = lambda _: None) -> None:
    """Build and cache the stack's images ahead of its first `up`, on an engine of its own in a
    temporary folder (stopped afterwards): `./kit test` starts this while it installs the rest,
    so that the tests' stack finds them cached. Nothing to do when they are cached already."""
    if cached():
        log(f"the stack's images are cached in {cache_dir()}")
        return
    from irkit.sandbox.engine import DockerEngine

    with tempfile.TemporaryDirectory(prefix="irkit-image-build-") as scratch:
        engine = DockerEngine(Path(scratch) / "docker")
        if not engine.installed:
            raise SandboxError("Docker is not installed: apt-get install docker.io")
        engine.start()
        try:
            images = Images(engine.url)
            try:
                images.ensure(log)
            finally:
                images.close()
        finally:
            engine.stop()


class Images:
    """The stack's images on one engine: found there, loaded from the cache, or built."""

    def __init__(self, docker_host: str, cache: Path | None = None) -> None:
        import docker

        self.docker_host = docker_host
        self.client: docker.DockerClient = docker.DockerClient(
            base_url=docker_host, timeout=BUILD_TIMEOUT_S
        )
        self.cache = cache or cache_dir()
        self.base = base_image()

    def close(self) -> None:
        self.client.close()

    def ensure(self, log: Log = lambda _: None) -> dict[str, str]:
        """Every service's image present in the engine; {service: image reference}. One build
        at a time per cache: a second `ensure` (another engine's) waits for the first to have
        cached the images, and loads them."""
        with (
            _build_lock(self.cache, log),
            tempfile.TemporaryDirectory(prefix="irkit-images-") as scratch,
        ):
            contexts = {s: build_context(s, Path(scratch) / s) for s in SERVICES}
            wanted = {
                s: Image(s, context_hash(folder, self.base.ref)) for s, folder in contexts.items()
            }
            refs = [image.ref for image in wanted.values()]
            bundle = _bundle(self.cache, refs)
            if self._missing(refs) and bundle.exists():
                log(f"loading the stack's images from {bundle}")
                self._docker("load", "--quiet", "--input", str(bundle))
            if missing := [s for s, image in wanted.items() if image.ref in self._missing(refs)]:
                self._ensure_base(log)
                # apt downloads dominate: the builds overlap well even on two cores.
                with ThreadPoolExecutor(max_workers=len(missing)) as pool:
                    done = [pool.submit(self._build, wanted[s], contexts[s], log) for s in missing]
                    for future in done:
                        future.result()
            if not bundle.exists():
                try:
                    self._save_bundle(bundle, refs, log)
                except (SandboxError, OSError) as exc:
                    # The stack runs all the same; only the next new engine builds again.
                    log(f"could not cache the images in {self.cache}: {exc}")
        return {s: image.ref for s, image in wanted.items()}

    def _missing(self, refs: list[str]) -> list[str]:
        return [ref for ref in refs if not self.client.images.list(name=ref)]

    def _docker(self, *args: str) -> str:
        return _run(["docker", "--host", self.docker_host, *args], f"docker {args[0]}")

    def _save_bundle(self, bundle: Path, refs: list[str], log: Log) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        partial = bundle.with_name(f"{bundle.name}.{os.getpid()}.partial")
        self._docker("save", "--output", str(partial), *refs)
        partial.replace(bundle)
        for older in self.cache.glob("stack-*.tar"):
            if older != bundle:
                older.unlink(missing_ok=True)
        log(f"cached the stack's images in {bundle}")

    def _present(self, image: Image, log: Log) -> bool:
        """In the engine already, or loaded now from its cached tarball."""
        if self.client.images.list(name=image.ref):
            return True
        tarball = image.tarball(self.cache)
        if not tarball.exists():
            return False
        log(f"loading {image.ref} from {tarball}")
        self._docker("load", "--quiet", "--input", str(tarball))
        return bool(self.client.images.list(name=image.ref))

    def _save(self, image: Image, log: Log) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        final = image.tarball(self.cache)
        partial = final.with_name(f"{final.name}.{os.getpid()}.partial")
        self._docker("save", "--output", str(partial), image.ref)
        partial.replace(final)
        log(f"cached {image.ref} in {final}")

    def _ensure_base(self, log: Log) -> None:
        if self._present(self.base, log):
            return
        source = mirror()
        log(f"building {self.base.ref}: debootstrap {SUITE} from {source} (about a minute)")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="irkit-debootstrap-") as scratch:
            root = Path(scratch) / "root"
            _run(["debootstrap", "--variant=minbase", SUITE, str(root), source], "debootstrap")
            _slim(root)
            tar = subprocess.Popen(
                ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
            )
            assert tar.stdout is not None
            repository, tag = self.base.ref.split(":")
            try:
                self.client.api.import_image(
                    src=tar.stdout, repository=repository, tag=tag, stream_src=True
                )
            finally:
                tar.stdout.close()
                tar.wait()
        log(f"built {self.base.ref} in {time.monotonic() - started:.0f} s")
        self._save(self.base, log)

    def _build(self, image: Image, context: Path, log: Log) -> None:
        import docker

        started = time.monotonic()
        log(f"building {image.ref}")
        labels = {"org.opencontainers.image.created": datetime.now(UTC).isoformat()}
        if (context / "app").is_dir():
            labels["org.opencontainers.image.revision"] = _git_commit(context / "app", image.tag)
            _download_wheels(context / "requirements.txt", context / "wheels")
        else:
            labels["org.opencontainers.image.revision"] = image.tag
        # A client of its own per build: the builds run in threads.
        client = docker.DockerClient(base_url=self.docker_host, timeout=BUILD_TIMEOUT_S)
        try:
            client.images.build(
                path=str(context),
                tag=image.ref,
                buildargs={"BASE": self.base.ref},
                labels=labels,
                network_mode="host",
                rm=True,
                forcerm=True,
            )
        except docker.errors.BuildError as exc:
            lines = [str(c.get("stream", c.get("error", ""))).strip() for c in exc.build_log]
            tail = " / ".join([line for line in lines if line][-4:])
            raise SandboxError(f"building {image.ref} failed: {tail}") from None
        finally:
            client.close()
        log(f"built {image.ref} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    try:
        prepare(log=lambda line: print(line, flush=True))
    except SandboxError as exc:
        sys.exit(f"irkit: {exc}")
