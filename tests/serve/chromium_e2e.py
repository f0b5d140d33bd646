"""Drives the vtl search page in headless Chromium over the DevTools protocol (pipe
transport: no network client library needed).

usage: chromium_e2e.py CHROMIUM URL IMAGE SCREENSHOT.png
Opens URL, puts IMAGE into the page's file input (as a user picking a file), waits for
the result cards, saves a screenshot and prints one JSON line:
  {"results": n, "first_class": "...", "first_score": "...", "status": "...",
   "clicked": "...", "like": {"results": n, "names": [...], "status": "..."}}
Exit status 0 on success, 1 with a message otherwise.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

chromium, url, image, screenshot = sys.argv[1:5]
profile = tempfile.mkdtemp(prefix="vtl-chromium-")
to_browser_r, to_browser_w = os.pipe()
from_browser_r, from_browser_w = os.pipe()


def child_fds():
    # The browser reads commands on fd 3 and writes replies on fd 4. Copy through fresh
    # descriptors first: os.dup2 onto the same number would keep close-on-exec set.
    commands, replies = os.dup(to_browser_r), os.dup(from_browser_w)
    os.dup2(commands, 3)
    os.dup2(replies, 4)


flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--remote-debugging-pipe", "--window-size=1280,900", "about:blank"]
browser = subprocess.Popen([chromium] + flags, preexec_fn=child_fds, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, close_fds=False)
os.close(to_browser_r)
os.close(from_browser_w)
writer = os.fdopen(to_browser_w, "wb", buffering=0)
reader = os.fdopen(from_browser_r, "rb", buffering=0)
buffer = b""
next_id = 0
events = []


def read_message(deadline):
    global buffer
    while b"\0" not in buffer:
        if time.time() > deadline:
            raise TimeoutError("no message from chromium")
        chunk = os.read(reader.fileno(), 1 << 16)
        if not chunk:
            raise RuntimeError("chromium closed the pipe")
        buffer += chunk
    message, buffer = buffer.split(b"\0", 1)
    return json.loads(message)


def send(method, params=None, session=None, timeout=30):
    global next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    writer.write(json.dumps(message).encode() + b"\0")
    deadline = time.time() + timeout
    while True:
        reply = read_message(deadline)
        if reply.get("id") == next_id:
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply.get("result", {})
        events.append(reply)


def wait_event(name, timeout=30):
    deadline = time.time() + timeout
    while True:
        for i, event in enumerate(events):
            if event.get("method") == name:
                return events.pop(i)
        events.append(read_message(deadline))


def evaluate(session, expression):
    result = send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                  session)
    return result.get("result", {}).get("value")


try:
    target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    send("Page.enable", session=session)
    send("Runtime.enable", session=session)
    send("Page.navigate", {"url": url}, session)
    wait_event("Page.loadEventFired")
    document = send("DOM.getDocument", {}, session)["root"]["nodeId"]
    node = send("DOM.querySelector", {"nodeId": document, "selector": "#file"}, session)["nodeId"]
    send("DOM.setFileInputFiles", {"nodeId": node, "files": [os.path.abspath(image)]}, session)
    deadline = time.time() + 60
    count = 0
    while time.time() < deadline:
        count = evaluate(session, "document.querySelectorAll('.result').length") or 0
        failed = evaluate(session, "document.getElementById('status').className === 'error'")
        if count or failed:
            break
        time.sleep(0.1)
    # Let the thumbnails finish loading before the screenshot.
    for _ in range(100):
        if evaluate(session, "[...document.images].every(i => i.hidden || i.complete)"):
            break
        time.sleep(0.1)
    summary = evaluate(session, """JSON.stringify({
        results: document.querySelectorAll('.result').length,
        first_class: document.querySelector('.result .label')?.textContent || '',
        first_score: document.querySelector('.result .score')?.textContent || '',
        thumbnails_loaded: [...document.querySelectorAll('.result img')]
            .filter(i => i.complete && i.naturalWidth > 0).length,
        status: document.getElementById('status').textContent,
        about: document.getElementById('about').textContent})""")
    # "More like this" on the first result (the uploaded image's catalogued copy): the
    # results are replaced by others, without that image.
    clicked = evaluate(session, """(() => {
        const name = document.querySelector('.result .name').textContent;
        document.getElementById('status').textContent = '';
        document.querySelector('.result .like').click();
        return name; })()""")
    deadline = time.time() + 60
    while time.time() < deadline:
        if evaluate(session, "/results in|error/.test(document.getElementById('status')"
                             ".textContent + document.getElementById('status').className)"):
            break
        time.sleep(0.1)
    like = evaluate(session, """JSON.stringify({
        results: document.querySelectorAll('.result').length,
        names: [...document.querySelectorAll('.result .name')].map(n => n.textContent),
        status: document.getElementById('status').textContent})""")
    summary = json.dumps(dict(json.loads(summary), clicked=clicked, like=json.loads(like)))
    shot = send("Page.captureScreenshot", {"format": "png"}, session)["data"]
    os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
    with open(screenshot, "wb") as f:
        f.write(base64.b64decode(shot))
    print(summary)
    ok = json.loads(summary)["results"] > 0
    try:
        send("Browser.close", timeout=5)
    except Exception:
        pass
except Exception as error:  # report, then clean up
    print(f"e2e failed: {error}")
    ok = False
finally:
    try:
        browser.wait(timeout=10)
    except subprocess.TimeoutExpired:
        browser.kill()
        browser.wait()
    shutil.rmtree(profile, ignore_errors=True)
sys.exit(0 if ok else 1)
