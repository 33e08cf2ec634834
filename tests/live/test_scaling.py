"""Past one machine, for real: `postlens worker`s and `postlens serve`s sharing one PostgreSQL (docs/scaling.md).

Each test starts what it needs on loopback and stops it at the end: a throwaway PostgreSQL cluster
(scripts/test-postgres.sh: Debian's postgresql, initdb in a temporary folder), the built binary (POSTLENS_BINARY,
default .build/debug/postlens) on the tiny fixture model, and for the load-balancer test Debian's nginx.
Without PostgreSQL or nginx the tests are skipped, unless POSTLENS_REQUIRE_POSTGRES=1 (scripts/test.sh), which fails them.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import BINARY, MODEL, REPO, stop_process

IMAGE = REPO / "Tests" / "Fixtures" / "images" / "tiny_20x30.png"
SCRIPT = REPO / "scripts" / "test-postgres.sh"
REQUIRED = os.environ.get("POSTLENS_REQUIRE_POSTGRES") == "1"
# A custom task whose schema leaves the random fixture model nothing to invent: every good post gets a result.
OPTIONS = {"instruction": "Is this a complaint?", "max_tokens": 24, "max_pixels": 4096,
           "schema": {"type": "object", "required": ["complaint"], "properties": {"complaint": {"type": "boolean"}}}}


def missing(what):
    if REQUIRED:
        pytest.fail(f"{what} (POSTLENS_REQUIRE_POSTGRES=1): run scripts/install-deps.sh --test", pytrace=False)
    pytest.skip(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A throwaway PostgreSQL server: {url, dir, port}."""
    if not BINARY.exists():
        pytest.fail(f"{BINARY} does not exist: run `swift build` first", pytrace=False)
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        missing("PostgreSQL is not installed")
    started = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    env = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines())
    env = {k: v.strip("'") for k, v in env.items()}
    info = {"url": env["POSTLENS_TEST_DATABASE_URL"], "dir": env["POSTLENS_TEST_PGDATA"], "port": env["POSTLENS_TEST_PGPORT"]}
    yield info
    subprocess.run([str(SCRIPT), "stop", info["dir"]], capture_output=True, timeout=60)


def psql(url, sql):
    out = subprocess.run(["psql", url, "-XAtq", "-c", sql], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def database(cluster):
    """A fresh database on the cluster, its URL."""
    name = "live_" + uuid.uuid4().hex[:10]
    psql(cluster["url"], f"CREATE DATABASE {name}")
    yield cluster["url"].replace("/postlens_test?", f"/{name}?")
    psql(cluster["url"], f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(*args, timeout=120):
    out = subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)
    return out


def write_posts(folder, count=200):
    """`count` posts over the fixture image; 5 bad: a missing image, a broken line, neither image nor text, an image
    that is a number, a corrupt image (only a worker finds that one). Returns (path, ids of all, ids of the bad)."""
    (folder / "corrupt.png").write_bytes(b"this is not an image")
    shutil.copy(IMAGE, folder / "photo.png")  # images stay inside the input's folder (no --trust-input)
    lines, ids, bad = [], [], []
    for i in range(count):
        pid = f"post-{i}"
        if i == 10:
            lines.append(json.dumps({"id": pid, "image": "missing/nowhere.png", "text": "缺图"}))
        elif i == 50:
            lines.append(json.dumps({"id": pid, "image": "corrupt.png", "text": "坏图"}))
        elif i == 90:
            lines.append('{"id": "post-90", "image": ')
            pid = f"line-{i + 1}"
        elif i == 130:
            lines.append(json.dumps({"id": pid, "meta": {"note": "neither image nor text"}}))
        elif i == 170:
            lines.append(json.dumps({"id": pid, "image": 42, "text": "image is a number"}))
        else:
            lines.append(json.dumps({"id": pid, "image": "photo.png", "text": f"第{i}条评论：物流很快，包装完好"}, ensure_ascii=False))
        ids.append(pid)
        if i in (10, 50, 90, 130, 170):
            bad.append(pid)
    path = folder / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, ids, bad


class Worker:
    """One `postlens worker` process, its log in a file."""

    def __init__(self, url, folder, name, lease=3):
        self.log_path = folder / f"worker-{name}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(BINARY), "worker", "--database", url, "--model", str(MODEL), "--threads", "1", "--concurrency", "2",
             "--lease-seconds", str(lease), "--poll-seconds", "0.2", "--exit-when-idle"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)

    @property
    def pid(self):
        return self.process.pid

    def tail(self):
        self.log.flush()
        return self.log_path.read_text()[-3000:]


class LiveStatus:
    """`postlens jobs status JOB` on a pseudo-terminal, read until it exits."""

    def __init__(self, url, job):
        import pty
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen([str(BINARY), "jobs", "status", "--database", url, job, "--interval", "0.2"],
                                        stdin=slave, stdout=slave, stderr=slave, cwd=REPO, close_fds=True)
        os.close(slave)

    def finish(self, timeout=120):
        import select
        chunks, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if not ready:
                if self.process.poll() is not None:
                    break
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the other side closed: the command exited
                break
            if not data:
                break
            chunks.append(data)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)
        return b"".join(chunks).decode(errors="replace")


def job_counts(url, job):
    row = psql(url, f"SELECT state, done, failed FROM job WHERE id = '{job}'")
    state, done, failed = row.split("|")
    return state, int(done), int(failed)


def running_items_of(url, pid):
    return int(psql(url, f"SELECT count(*) FROM job_item WHERE state = 'running' AND worker_id LIKE '%:{pid}:%'"))


def held_items(url, pid):
    return psql(url, f"SELECT seq FROM job_item WHERE state = 'running' AND worker_id LIKE '%:{pid}:%' ORDER BY seq").split()


def freeze_holding_items(url, job, worker, after_done):
    """Stops the worker (SIGSTOP) at a moment it holds leased, unfinished items, once `after_done` items are done;
    returns their seqs. A frozen worker cannot finish them, so a signal sent now lands mid-item."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if job_counts(url, job)[1] >= after_done and running_items_of(url, worker.pid) > 0:
            worker.process.send_signal(signal.SIGSTOP)
            held = held_items(url, worker.pid)
            if held:
                return held
            worker.process.send_signal(signal.SIGCONT)  # between two items: try again
        time.sleep(0.01)
    raise AssertionError(f"worker {worker.pid} never held an item: {worker.tail()}")


def wait_until(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.mark.parametrize("restart_database", [False, True], ids=["steady", "database-restart"])
def test_three_workers_one_killed_one_stopped_every_record_once(database, cluster, tmp_path, restart_database):
    path, ids, bad = write_posts(tmp_path)
    submitted = run("jobs", "submit", "--database", database, "--task", "custom", "--input", str(path), "--options", json.dumps(OPTIONS))
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().splitlines()[-1]
    assert job.startswith("job_")
    assert job_counts(database, job) == ("queued", 4, 4)  # four bad records are refused at submission

    # `jobs status` on a terminal: a live bar, redrawn in place, until the job ends.
    terminal = LiveStatus(database, job)

    workers = [Worker(database, tmp_path, name) for name in ("killed", "stopped", "survivor")]
    killed, stopped, survivor = workers
    try:
        # SIGKILL mid-item: while the worker holds leased, unfinished items, once the run is well under way.
        lost = freeze_holding_items(database, job, killed, after_done=30)
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait(timeout=10)

        # SIGTERM mid-item. With a database restart, it comes while the others are frozen and the database restarts
        # under them: the stopped worker must write its results to the restarted database before it leaves, and the
        # survivor must reconnect and finish the job.
        drained = freeze_holding_items(database, job, stopped, after_done=60)
        if restart_database:
            survivor.process.send_signal(signal.SIGSTOP)
            restarted = subprocess.run([str(SCRIPT), "restart", cluster["dir"]], capture_output=True, text=True, timeout=120)
            assert restarted.returncode == 0, restarted.stderr
        stopped.process.send_signal(signal.SIGTERM)
        stopped.process.send_signal(signal.SIGCONT)
        assert stopped.process.wait(timeout=90) == 0, stopped.tail()
        assert running_items_of(database, stopped.pid) == 0, "a drained worker leaves nothing leased"
        stopped_id = psql(database, f"SELECT id FROM job_worker WHERE pid = {stopped.pid}")
        finishers = psql(database, f"SELECT DISTINCT worker_id FROM job_result WHERE job_id = '{job}' AND seq IN ({','.join(drained)})")
        assert finishers.split() == [stopped_id], "the items in flight at SIGTERM were finished by the stopped worker itself"
        if restart_database:
            survivor.process.send_signal(signal.SIGCONT)

        assert survivor.process.wait(timeout=300) == 0, survivor.tail()
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGCONT)
                worker.process.kill()
                worker.process.wait(timeout=10)
            worker.log.close()

    screen = terminal.finish()
    assert f"\r\x1b[2K{job}  custom@1  " in screen and "/200 items" in screen and "[#" in screen, screen[-500:]  # redrawn in place
    assert f"{job}  custom@1  completed" in screen, screen[-500:]

    status = run("jobs", "status", "--database", database, job, "--json")
    info = json.loads(status.stdout)
    assert info["state"] == "completed", info
    assert (info["total"], info["done"], info["failed"], info["running"]) == (200, 200, 5, 0), info

    out = tmp_path / "results.jsonl"
    results = run("jobs", "results", "--database", database, job, "--output", str(out))
    assert results.returncode == 0, results.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ids, "every record exactly once, in input order"
    errors = {line["id"]: line["error"] for line in lines if line["status"] == "error"}
    assert sorted(errors) == sorted(bad), errors
    assert errors["post-10"].startswith("image not found")
    assert errors["post-50"].startswith("cannot decode image")
    assert all(isinstance(line["result"]["complaint"], bool) for line in lines if line["status"] == "ok")
    assert int(psql(database, f"SELECT count(*) FROM job_result WHERE job_id = '{job}'")) == 200

    # The killed worker's items were taken over after their lease expired, counted against it, and finished by others.
    expiries = int(psql(database, f"SELECT lease_expiries FROM job_worker WHERE pid = {killed.pid}"))
    assert expiries == len(lost), f"lease expiries of the killed worker: {expiries}, items it held: {lost}"
    retaken = psql(database, f"SELECT seq, attempts FROM job_item WHERE job_id = '{job}' AND seq IN ({','.join(lost)}) ORDER BY seq")
    assert all(int(line.split("|")[1]) == 2 for line in retaken.split()), retaken
    lost_by = psql(database, f"SELECT DISTINCT worker_id FROM job_result WHERE job_id = '{job}' AND seq IN ({','.join(lost)})").split()
    assert lost_by and not any(f":{killed.pid}:" in w for w in lost_by), lost_by
    if restart_database:
        # Both workers wrote results to the restarted server (they reconnected on their own).
        for worker in (stopped, survivor):
            after = int(psql(database, f"""SELECT count(*) FROM job_result r JOIN job_worker w ON w.id = r.worker_id
                                           WHERE r.job_id = '{job}' AND w.pid = {worker.pid} AND r.finished_at > pg_postmaster_start_time()"""))
            assert after > 0, f"{worker.log_path.name} wrote nothing after the restart: {worker.tail()}"


# ---------------------------------------------------------------------------------------------------------------
# Two servers on one database behind nginx.

def http(base, path, method="GET", body=None, raw=None, timeout=30):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload, status, headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        payload, status, headers = error.read(), error.code, error.headers
    try:
        return status, json.loads(payload), headers
    except (json.JSONDecodeError, UnicodeDecodeError):
        return status, payload, headers


class Server:
    def __init__(self, url, folder, name):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"serve-{name}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--model", str(MODEL), "--port", str(self.port), "--database", url, "--threads", "1"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)

    def wait_ready(self):
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"postlens serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                return http(self.base, "/health", timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(ready, 90, f"{self.base}/health")

    def stop(self):
        stop_process(self.process)
        self.log.close()


@pytest.fixture
def balanced(database, tmp_path):
    """Two `postlens serve --database` behind nginx (round robin): {"nginx", "servers"}."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not nginx:
        missing("nginx is not installed")
    servers = [Server(database, tmp_path, name) for name in ("a", "b")]
    proxy = None
    try:
        for server in servers:
            server.wait_ready()
        port = free_port()
        prefix = tmp_path / "nginx"
        (prefix / "logs").mkdir(parents=True)
        upstreams = "\n".join(f"    server 127.0.0.1:{s.port};" for s in servers)
        (prefix / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  upstream postlens {{
{upstreams}
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 50m;
    location / {{
      proxy_pass http://postlens;
      proxy_http_version 1.1;
      proxy_set_header Host $host;  # the servers answer the page and /api only for allowed Host names
      proxy_set_header Connection "";
      proxy_buffering off;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
""")
        proxy = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(base), 20, "nginx")
        yield {"nginx": base, "servers": servers}
    finally:
        if proxy:
            proxy.terminate()
            proxy.wait(timeout=10)
        for server in servers:
            server.stop()


def _answers(base):
    try:
        return http(base, "/health", timeout=2)[0] == 200
    except OSError:
        return False


def test_two_servers_behind_nginx_share_conversations_and_jobs(balanced):
    a, b = balanced["servers"]
    nginx = balanced["nginx"]
    image = "data:image/png;base64," + __import__("base64").b64encode(IMAGE.read_bytes()).decode()

    # Created through one server...
    status, created, _ = http(a.base, "/api/conversations", "POST", {"title": "Shared 共享", "parameters": {"temperature": 0}})
    assert status in (200, 201), created
    cid = created["id"]
    status, _, _ = http(a.base, f"/api/conversations/{cid}/messages", "POST",
                        {"role": "user", "content": "What is in the picture?", "images": [image]})
    assert status in (200, 201)

    # ...listed, exported and continued through the other.
    status, listed, _ = http(b.base, "/api/conversations")
    assert status == 200 and cid in [c["id"] for c in listed["data"]], listed
    status, exported, _ = http(b.base, f"/api/conversations/{cid}/export")
    assert status == 200 and exported["conversations"][0]["title"] == "Shared 共享"
    assert exported["conversations"][0]["messages"][0]["images"][0]["dataURL"].startswith("data:image/png;base64,")
    status, completion, _ = http(b.base, "/v1/chat/completions", "POST", {
        "model": "tiny", "max_tokens": 8, "temperature": 0,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                                  {"type": "text", "text": "What is in the picture?"}]}]})
    assert status == 200, completion
    answer = completion["choices"][0]["message"]["content"]
    status, _, _ = http(b.base, f"/api/conversations/{cid}/messages", "POST", {"role": "assistant", "content": answer})
    assert status in (200, 201)
    status, _, _ = http(b.base, f"/api/conversations/{cid}/messages", "POST", {"role": "user", "content": "继续"})
    assert status in (200, 201)
    status, seen_by_a, _ = http(a.base, f"/api/conversations/{cid}")
    assert [m["content"] for m in seen_by_a["messages"]] == ["What is in the picture?", answer, "继续"]

    # Through the load balancer, whichever server answers sees the same history.
    upstreams = set()
    for _ in range(6):
        status, listed, headers = http(nginx, "/api/conversations")
        assert status == 200 and listed["data"][0]["id"] == cid
        upstreams.add(headers.get("X-Upstream"))
    assert len(upstreams) == 2, f"nginx spread the requests over both servers: {upstreams}"

    # A batch submitted through the balancer is reported by both servers and run to completion.
    body = "\n".join(json.dumps({"id": f"r{i}", "text": f"第{i}条"}, ensure_ascii=False) for i in range(6)).encode()
    query = urllib.parse.urlencode({"task": "custom", "instruction": OPTIONS["instruction"], "schema": json.dumps(OPTIONS["schema"]),
                                    "max_tokens": "24"}, quote_via=urllib.parse.quote)
    status, batch, _ = http(nginx, f"/v1/batches?{query}", "POST", raw=body)
    assert status == 200, batch
    bid = batch["id"]
    def finished():
        return all(http(s.base, f"/v1/batches/{bid}")[1]["status"] == "completed" for s in (a, b))
    wait_until(finished, 120, "the batch to complete on both servers")
    status, text, _ = http(nginx, f"/v1/batches/{bid}/results")
    lines = [json.loads(line) for line in (text if isinstance(text, bytes) else json.dumps(text).encode()).decode().splitlines()]
    assert [line["id"] for line in lines] == [f"r{i}" for i in range(6)]
    status, listing, _ = http(b.base, "/v1/batches")
    assert bid in [job["id"] for job in listing["data"]]

    status, metrics, _ = http(a.base, "/metrics")
    text = metrics.decode() if isinstance(metrics, bytes) else json.dumps(metrics)
    assert "postlens_jobs_queue_depth 0" in text and "postlens_jobs_database_up 1" in text, text[:2000]
    assert 'postlens_worker_claimed_items{' in text
