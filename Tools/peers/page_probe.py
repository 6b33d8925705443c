#!/usr/bin/env python3
"""Loads one page in headless Chromium (Chrome DevTools Protocol) and prints what the page's
own script found, as JSON, for the tests of what a web page can do to a local server.

Usage: page_probe.py --url URL [--browser chromium-headless-shell] [--seconds 20]

The page sets `window.probeResult` to an object when it is done; this waits for it (up to
--seconds) and prints it. The browser is started with its own profile directory and killed by
its process group.
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile

from page_check import open_page, start_browser


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--browser", default=shutil.which("chromium-headless-shell") or shutil.which("chromium") or "chromium")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    profile = tempfile.mkdtemp(prefix="wmq-probe-")
    browser, endpoint = start_browser(args.browser, profile)
    try:
        page = open_page(endpoint, args.url)
        result = page.wait_for("window.probeResult ? JSON.stringify(window.probeResult) : ''", args.seconds)
    finally:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
    print(result if result else json.dumps({"error": "the page did not finish in %g s" % args.seconds}))


if __name__ == "__main__":
    sys.exit(main())
