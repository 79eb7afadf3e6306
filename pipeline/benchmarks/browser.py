"""Headless Chromium for the web page's tests and benchmark: Debian's `chromium` package,
driven by Playwright (no browser download: Playwright is pointed at the system binary)."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PipelineError

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking switches Chromium keeps trying hosts this machine cannot reach; as root
# it needs --no-sandbox; headless it has no GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
# The page sets body[data-state] to loading, drawing, walking, ready or error.
SETTLED = "body[data-state=ready], body[data-state=error]"


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed (the dev extra has it)"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM}"
    return None


def launch(playwright):
    """Headless Chromium, or a `PipelineError` saying what to install."""
    reason = missing()
    if reason:
        raise PipelineError(f"{reason}: `make web-setup` installs it")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def launch_with_profile(playwright, profile: Path):
    """A headless Chromium context with a profile folder, so a disk cache, as a person's
    browser has (`launch`'s contexts keep their cache in memory, and not for large files)."""
    reason = missing()
    if reason:
        raise PipelineError(f"{reason}: `make web-setup` installs it")
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
