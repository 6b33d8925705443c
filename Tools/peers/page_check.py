#!/usr/bin/env python3
"""Drives wmq-mock's page in headless Chromium (Chrome DevTools Protocol) like a user would, and
prints what the page showed as JSON, for the mock's tests.

Usage: page_check.py --url http://127.0.0.1:PORT/ --text TEXT [--browser chromium-headless-shell]

Loads the page, waits for its live view to connect, reads its connect hint (URL, subprotocol,
MQTT.js snippet), fills the notification form with TEXT and presses Send, then waits (up to
10 s) for TEXT to appear in the live view and in the conversation view; publishes a retained
message with the Publish form and reads the retained list. Prints the page's status, the
connect hint, the connected-clients list, the answer to the form, the live view's lines that
hold TEXT, the conversation view and the retained list. The browser is started with its own
profile directory and killed by its process id.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket


class Page:
    def __init__(self, url):
        self.socket = websocket.create_connection(url, timeout=10)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        return self.evaluate(expression)


def start_browser(binary, profile):
    process = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = process.stderr.readline()
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            break
    process.kill()
    raise SystemExit(json.dumps({"error": "the browser did not start its DevTools endpoint"}))


def open_page(endpoint, url):
    """The browser's first tab (DevTools endpoint `endpoint`), navigated to `url`."""
    port = re.search(r"ws://[^:/]+:(\d+)/", endpoint).group(1)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
        targets = json.load(response)
    target = next(t for t in targets if t.get("type") == "page")
    page = Page(target["webSocketDebuggerUrl"])
    page.call("Page.enable")
    page.call("Runtime.enable")
    page.call("Page.navigate", url=url)
    return page


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--browser", default=shutil.which("chromium-headless-shell") or shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    profile = tempfile.mkdtemp(prefix="wmq-page-")
    browser, endpoint = start_browser(args.browser, profile)
    result = {}
    try:
        page = open_page(endpoint, args.url)
        result["title"] = page.wait_for("document.readyState === 'complete' && document.title")
        result["status"] = page.wait_for("document.getElementById('status').textContent === 'live' && 'live'") or \
            page.evaluate("document.getElementById('status').textContent")
        result["connectURL"] = page.wait_for("(() => { const t = document.getElementById('connect-url').textContent; return t.startsWith('ws') ? t : ''; })()")
        result["snippet"] = page.evaluate("document.getElementById('snippet').textContent")
        result["conversationShown"] = page.evaluate("!document.getElementById('conversation-view').hidden")
        result["clients"] = page.wait_for(
            "(() => { const t = document.getElementById('clients').innerText; return t.includes('·') ? t : ''; })()", 5) or \
            page.evaluate("document.getElementById('clients').innerText")
        # Fill the form and press Send, as a user would.
        page.evaluate(f"""(() => {{
            const form = document.getElementById('notify');
            form.elements.channel.value = '77';
            form.elements.sender.value = 'Browser';
            form.elements.text.value = {json.dumps(args.text)};
            form.querySelector('button').click();
        }})()""")
        result["answer"] = page.wait_for("document.getElementById('result').textContent")
        text = json.dumps(args.text)
        lines = page.wait_for(f"""(() => Array.from(document.querySelectorAll('#traffic div'))
            .map(d => d.textContent).filter(t => t.includes({text})))()""")
        result["lines"] = lines or []
        result["works"] = page.evaluate(f"""Array.from(document.querySelectorAll('#traffic div.works'))
            .some(d => d.textContent.includes({text}))""")
        result["conversation"] = page.wait_for(f"""(() => {{ const t = document.getElementById('conversation').innerText;
            return t.includes({text}) ? t : ''; }})()""", 5) or page.evaluate("document.getElementById('conversation').innerText")
        # A retained message through the Publish form, then the retained list.
        page.evaluate("""(() => {
            const form = document.getElementById('publish');
            form.elements.topic.value = 'status/page-check';
            form.elements.payload.value = '{"retained": true}';
            form.elements.retain.checked = true;
            form.querySelector('button').click();
        })()""")
        result["retained"] = page.wait_for("""(() => { const t = document.getElementById('retained').innerText;
            return t.includes('status/page-check') ? t : ''; })()""", 10) or page.evaluate("document.getElementById('retained').innerText")
    finally:
        # The browser and its helper processes share its process group: all of them go.
        os.killpg(browser.pid, signal.SIGKILL)
        browser.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
