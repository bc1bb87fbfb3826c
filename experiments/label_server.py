"""`alframe label RUN_DIR`: a labelling page and its HTTP API, for a pool labelled by people.

Each answer is a `tell` committed to the store before the reply; the committee refits in a
background thread whenever labels arrived since its last fit, and the next item is the one the
latest committee disagrees on most, so a person never waits for a fit. Items handed out are
leased for `lease_s` seconds: several people at once get different items, and an item whose
page was closed goes to the next person once its lease runs out. A server that is killed
loses nothing: every label is in the store, every asked item in the checkpoint, and the items
asked and not labelled are served first when it starts again.

    GET  /                the page
    GET  /api/next        {"query_id", "item", "classes", "image" (a URL) or "features"};
                          query_id null (with "message") while nothing can be asked
    POST /api/label       {"query_id", "label"}: label a class name, or null for "can't tell"
                          (recorded as a failed run with that reason, never as a label);
                          200 {"ok": true, "status"}, or 400 {"error": one line}
    GET  /api/status      labels so far, pending, budget, held-out metrics per round
    GET  /api/image/ID    the picture of query ID
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from alframe.labels import ItemPool
from alframe.oracle import Outcome
from experiments.cli import Campaign, CampaignError, ask_queries, tell_outcome

CANT_TELL = "the labeller could not tell"
PAGE = Path(__file__).with_name("label_page.html")


class LabelError(ValueError):
    """A request the server refuses; the message is the one-line reason sent back."""


class LabelSession:
    """The campaign behind the server: leases, labels and the background fit, under one lock."""

    def __init__(self, campaign: Campaign, *, lease_s: float = 300.0):
        if not isinstance(campaign.oracle, ItemPool):
            raise CampaignError(f"{campaign.run_dir}: `alframe label` serves a pool of items labelled by people "
                                f"(simulator: alframe.labels.item_pool); this run's simulator is "
                                f"{type(campaign.oracle).__name__}")
        self.campaign, self.pool, self.lease_s = campaign, campaign.oracle, lease_s
        self.lock = threading.Lock()
        self.leases: dict[int, float] = {}  # query id -> when its lease ends
        self.fit_wanted = threading.Event()
        self.closing = threading.Event()
        self.fit_error: str | None = None
        self.labelled_this_session = 0
        self.fitter = threading.Thread(target=self._fit_forever, name="alframe-fit", daemon=True)
        self.fitter.start()
        self.fit_wanted.set()  # a run resumed after its last labels may be due a fit

    # -- items ----------------------------------------------------------------------------

    def _row_of(self, qid: int) -> int:
        return self.pool.row_of(self.campaign.state["pending"][qid]["x"])

    def _item(self, qid: int) -> dict[str, Any]:
        row = self._row_of(qid)
        reply = {"query_id": qid, "item": self.pool.item_name(row), "classes": list(self.pool.outputs.classes)}
        if self.pool.images is not None:
            reply["image"] = f"/api/image/{qid}"
        else:
            reply["features"] = self.pool.features(row)
        return reply

    def next_item(self) -> dict[str, Any]:
        """The next item to label: a pending one nobody holds, else a new query."""
        with self.lock:
            campaign, now = self.campaign, time.monotonic()
            if campaign.recorder.finished:
                return {"query_id": None, "done": True,
                        "message": f"the run has ended ({campaign.recorder.data.attrs['stop_reason']})"}
            for qid in sorted(campaign.state["pending"]):
                if self.leases.get(qid, 0.0) <= now:
                    self.leases[qid] = now + self.lease_s
                    return self._item(qid)
            if campaign.state["fitted_on"] < 0 and campaign.fit_due():
                return {"query_id": None, "message": "the committee is making its first fit"}
            rows, summary = ask_queries(campaign, 1)
            if not rows:
                return {"query_id": None, "done": campaign.recorder.finished, "message": summary}
            qid = int(rows[0][0])
            self.leases[qid] = now + self.lease_s
            return self._item(qid)

    def image(self, qid: int) -> tuple[bytes, str]:
        with self.lock:
            if qid not in self.campaign.state["pending"]:
                raise LabelError(f"query {qid} is not waiting for a label")
            row = self._row_of(qid)
        return self.pool.image(row)

    # -- labels ---------------------------------------------------------------------------

    def label(self, qid: Any, answer: Any) -> dict[str, Any]:
        """Record `answer` (a class name, or None for can't tell) for query `qid`."""
        classes = list(self.pool.outputs.classes)
        if isinstance(qid, bool) or not isinstance(qid, int):
            raise LabelError(f"query_id must be an integer, got {qid!r}")
        if answer is not None and answer not in classes:
            raise LabelError(f"label {answer!r} is not a class; the classes are {classes} (null: can't tell)")
        with self.lock:
            campaign = self.campaign
            if campaign.recorder.finished:
                raise LabelError(f"the run has ended ({campaign.recorder.data.attrs['stop_reason']})")
            if qid not in campaign.state["pending"]:
                why = "was labelled already" if 0 <= qid < campaign.state["next_id"] else "was never asked"
                raise LabelError(f"query {qid} {why}")
            point = np.asarray(campaign.state["pending"][qid]["x"], dtype=np.float64)[None]
            ok = answer is not None
            outcome = Outcome(np.array([[classes.index(answer) if ok else np.nan]]), np.array([ok]),
                              np.array(["" if ok else CANT_TELL], dtype=object), np.array([np.nan]))
            tell_outcome(campaign, [qid], point, outcome)
            self.leases.pop(qid, None)
            self.labelled_this_session += 1
            if campaign.learner.remaining() < 1 and not campaign.state["pending"] and not campaign.fit_due():
                campaign.finish("budget spent")
            if not campaign.recorder.finished:
                campaign.save()
        self.fit_wanted.set()
        return {"ok": True, "status": self.status()}

    # -- the background fit ---------------------------------------------------------------

    def _fit_forever(self) -> None:
        while not self.closing.is_set():
            self.fit_wanted.wait(timeout=1.0)
            self.fit_wanted.clear()
            if self.closing.is_set():
                return
            try:
                self.fit_once()
            except Exception as exc:  # shown on the page and in /api/status; the labels are safe
                self.fit_error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()

    def fit_once(self) -> bool:
        """Fit on every label so far if a fit is due; True if one was made."""
        with self.lock:
            campaign = self.campaign
            if campaign.recorder.finished or not campaign.fit_due():
                return False
            runs, learner = campaign.learner.runs, campaign.learner
            if not runs.ok.any():
                return False  # nothing but "can't tell" so far
            x, y, n_told, spent = runs.x[runs.ok].copy(), runs.y[runs.ok].copy(), len(runs), learner.spent
        committee, metrics = learner.fit(x, y, spent=spent)  # outside the lock: labelling goes on
        with self.lock:
            if campaign.recorder.finished:
                return False
            campaign.adopt_fit(committee, metrics, n_told)
            if not campaign.recorder.finished:
                campaign.save()
        self.fit_error = None
        if campaign.fit_due():
            self.fit_wanted.set()
        return True

    def wait_for_fits(self, timeout: float = 60.0) -> None:
        """Block until no fit is due (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                due = self.campaign.fit_due() and not self.campaign.recorder.finished
            if not due:
                return
            time.sleep(0.05)
        raise TimeoutError("the committee's fit did not finish in time")

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self.lock:
            campaign = self.campaign
            runs, data, state = campaign.learner.runs, campaign.recorder.data, campaign.state
            curve = []
            if "round" in data.dims:
                names = [n for n in ("accuracy", "f1", "mean_disagreement") if n in data]
                for i in range(data.sizes["round"]):
                    curve.append({"n_labeled": int(data["n_labeled"].values[i]),
                                  **{n: float(data[n].values[i]) for n in names}})
            open_round = state["open_round"]
            if open_round is not None and len(curve) < open_round["round"]:
                curve.append({k: (float(v) if k != "n_labeled" else int(v)) for k, v in open_round.items()
                              if k in ("n_labeled", "accuracy", "f1", "mean_disagreement")})
            return {"labels": int(runs.ok.sum()), "cant_tell": int((~runs.ok).sum()),
                    "pending": len(state["pending"]), "budget": int(campaign.cfg.budget),
                    "budget_left": float(campaign.learner.remaining() - len(state["pending"])),
                    "round": int(campaign.learner.round_index), "curve": curve,
                    "finished": bool(campaign.recorder.finished),
                    "stop_reason": data.attrs.get("stop_reason") if campaign.recorder.finished else None,
                    "fit_error": self.fit_error}

    def close(self) -> None:
        self.closing.set()
        self.fit_wanted.set()
        self.fitter.join(timeout=120)


def handler_for(session: LabelSession) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "alframe-label"

        def log_message(self, format, *args):  # one line per request is noise for a person labelling
            pass

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, payload: dict) -> None:
            self._send(code, json.dumps(payload).encode(), "application/json")

        def _guard(self, work) -> None:
            try:
                work()
            except LabelError as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            except Exception as exc:
                traceback.print_exc()
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})

        def do_GET(self):  # noqa: N802 (the standard library's name)
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
            elif path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif path == "/api/next":
                self._guard(lambda: self._json(HTTPStatus.OK, session.next_item()))
            elif path == "/api/status":
                self._guard(lambda: self._json(HTTPStatus.OK, session.status()))
            elif path.startswith("/api/image/"):
                def image():
                    try:
                        qid = int(path.rsplit("/", 1)[1])
                    except ValueError:
                        raise LabelError(f"{path}: not a query id") from None
                    self._send(HTTPStatus.OK, *session.image(qid))
                self._guard(image)
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page {path}"})

        def do_POST(self):  # noqa: N802
            if self.path.split("?", 1)[0] != "/api/label":
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint {self.path}"})
                return

            def label():
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except json.JSONDecodeError as exc:
                    raise LabelError(f"the body is not JSON: {exc}") from None
                if not isinstance(body, dict) or "query_id" not in body or "label" not in body:
                    raise LabelError('the body must be JSON {"query_id": ID, "label": CLASS or null}')
                self._json(HTTPStatus.OK, session.label(body["query_id"], body["label"]))
            self._guard(label)

    return Handler


def serve(session: LabelSession, *, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server for `session` (not yet serving: call `serve_forever`)."""
    server = ThreadingHTTPServer((host, port), handler_for(session))
    server.daemon_threads = True
    return server
