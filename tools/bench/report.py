"""The report of `hotline bench`: figures from the recorded webhooks and the probes, as a dict and as a table."""
from __future__ import annotations

import os
import platform
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

ROUND_TRIPS = (
    "redis",
    "sql",
    "sql_tx",
    "sql_conn",
)  # the order of the counts in a recorded row, after step, seconds, status


def latency(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max in milliseconds (nearest rank)."""
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, max(0, round(p / 100 * len(ms) + 0.5) - 1))], 2)

    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": round(ms[-1], 2)}


def _means(rows: Sequence[tuple[Any, ...]]) -> dict[str, float]:
    return {k: round(sum(r[3 + i] for r in rows) / len(rows), 2) if rows else 0.0 for i, k in enumerate(ROUND_TRIPS)}


def _rate(rows: Sequence[tuple[Any, ...]], start: float, end: float) -> float:
    n = sum(1 for r in rows if start <= r[-1] <= end)
    return round(n / (end - start), 1) if end - start > 0 else 0.0


def _phase(rows: Sequence[tuple[Any, ...]], seconds: float, cpu: dict[str, float]) -> dict[str, Any]:
    return {
        "requests": len(rows), "seconds": round(seconds, 2), "rps": round(len(rows) / seconds, 1) if seconds else 0.0,
        "latency": latency([r[1] for r in rows]), "not_200": sum(1 for r in rows if r[2] != 200),
        "cpu_s": cpu, "web_cpu_ms_per_request": round(cpu["web"] * 1000 / len(rows), 2) if rows else 0.0,
    }


def _span(values: Sequence[int]) -> dict[str, int]:
    return {"first": values[0], "last": values[-1], "max": max(values)} if values else {}


def summarize(
    *,
    options: dict[str, Any],
    stack: Any,
    recorder: Any,
    pairs: Sequence[Any],
    check: dict[str, Any],
    flow: dict[str, Any],
    bare: dict[str, Any],
    commands: tuple[dict[str, int], dict[str, int]],
    rss: tuple[list[int], list[int]],
    samples: list[dict[str, Any]],
    jobs: dict[str, float],
) -> dict[str, Any]:
    """Everything one run measured, as plain JSON-ready values."""
    rows, bare_rows = recorder.phases.get("flow", []), recorder.phases.get("bare", [])
    callers = max(1, len(pairs))
    by_step: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in rows:
        by_step[r[0]].append(r)
    steps = {step: {"count": len(rs), "per_call": round(len(rs) / callers, 2), **latency([r[1] for r in rs]),
                    "not_200": sum(1 for r in rs if r[2] != 200), **{f"{k}_mean": v for k, v in _means(rs).items()}}
             for step, rs in sorted(by_step.items(), key=lambda kv: -len(kv[1]))}
    flow_phase = _phase(rows, flow["calls_seconds"], flow["cpu_s"])
    t0 = flow["t0"]
    flow_phase.update(rps=_rate(rows, t0, t0 + flow["calls_seconds"]), seconds_with_settling=round(flow["seconds"], 2),
                      rps_steady=_rate(rows, t0, t0 + flow["steady_seconds"]) if flow["steady_seconds"] > 1 else None,
                      steady_seconds=round(flow["steady_seconds"], 2), steps=steps)
    bare_phase = _phase(bare_rows, bare["seconds"], bare["cpu_s"])
    reference = flow_phase["rps_steady"] or flow_phase["rps"]
    before, after = commands
    delta = {c: after.get(c, 0) - before.get(c, 0) for c in after}
    top = sorted(((c, n) for c, n in delta.items() if n > 0), key=lambda cn: -cn[1])
    totals = {k: sum(r[3 + i] for r in rows) for i, k in enumerate(ROUND_TRIPS)}
    redis_mem = [s["used_memory"] for s in samples]
    return {
        "options": options,
        "stack": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "gunicorn_workers": stack.workers,
            "rq_workers": stack.rq_workers,
            "redis": stack.redis_label,
            "redis_version": stack.svc.redis.info("server").get("redis_version"),
            "database": stack.database_label,
        },
        "invariant": {
            k: check[k] for k in ("ok", "failures", "warnings", "callers", "accounted_once", "outcomes", "per_tier")
        },
        "flow": flow_phase,
        "bare": bare_phase,
        "ratio_flow_to_bare_rps": round(reference / bare_phase["rps"], 3) if bare_phase["rps"] else None,
        "per_call": {
            "webhooks": round(len(rows) / callers, 2),
            **{f"{k}_from_webhooks": round(v / callers, 2) for k, v in totals.items()},
            "redis_commands_all_clients": round(sum(n for _, n in top) / callers, 2),
            "redis_commands_by_name": {c: round(n / callers, 2) for c, n in top[:12]},
            "rq_jobs": round(jobs["jobs"] / callers, 2),
            "rq_job_ms_mean": round(jobs["working_s"] * 1000 / jobs["jobs"], 1) if jobs["jobs"] else 0.0,
        },
        "memory": {
            "web_worker_rss_kb": {"start": rss[0], "end": rss[1]},
            "redis_used_memory": {"start": redis_mem[0], "end": redis_mem[-1]} if redis_mem else {},
        },
        "samples": {
            "every_s": options["sample_every"],
            "count": len(samples),
            "web_rss_total_kb": _span([sum(s["web_rss_kb"]) for s in samples]),
            "redis_keys": _span([s["keys"] for s in samples]),
            "redis_keys_without_ttl": _span([s["keys"] - s["expiring"] for s in samples]),
            "redis_used_memory": _span(redis_mem),
            "series": samples,
        },
        "end_state": {k: check[k] for k in ("sql", "drained", "redis_keys", "rq_failed_jobs", "web_errors")},
    }


def render(rep: dict[str, Any]) -> str:
    """The report as a readable table."""
    o, f, b, pc, st = rep["options"], rep["flow"], rep["bare"], rep["per_call"], rep["stack"]
    inv = rep["invariant"]
    out = [
        f"hotline bench: {o['calls'] if not o['duration'] else format(o['duration'], 'g') + 's soak'} calls, "
        f"concurrency {o['concurrency']}, {o['agents']} agents, scale {o['scale']:g}; "
        f"gunicorn {st['gunicorn_workers']} workers, {st['rq_workers']} rq workers; "
        f"{st['database']}, redis {st['redis_version']} ({st['redis']}); {st['cpus']} CPUs",
        "",
        f"{'step':<16}{'count':>8}{'/call':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'redis':>7}{'sql':>6}{'sql tx':>7}{'conn':>6}",
    ]
    for step, s in f["steps"].items():
        out.append(f"{step[:16]:<16}{s['count']:>8}{s['per_call']:>7.2f}{s['p50_ms']:>9.1f}{s['p95_ms']:>9.1f}{s['p99_ms']:>9.1f}"
                   f"{s['redis_mean']:>7.2f}{s['sql_mean']:>6.2f}{s['sql_tx_mean']:>7.2f}{s['sql_conn_mean']:>6.2f}")
    for name, ph in (("all webhooks", f), ("bare endpoint", b)):
        lat = ph["latency"]
        out.append(f"{name:<16}{ph['requests']:>8}{'':>7}{lat['p50_ms']:>9.1f}{lat['p95_ms']:>9.1f}{lat['p99_ms']:>9.1f}")
    steady = (
        f" ({f['rps_steady']} rps while {o['concurrency']} calls ran, {f['steady_seconds']} s)"
        if f["rps_steady"]
        else ""
    )
    out += [
        "",
        f"throughput: webhooks {f['rps']} rps over {f['seconds']} s{steady}; bare endpoint {b['rps']} rps; "
        f"ratio {rep['ratio_flow_to_bare_rps']}",
        f"web CPU per request: webhooks {f['web_cpu_ms_per_request']} ms, bare {b['web_cpu_ms_per_request']} ms; "
        f"CPU seconds during the calls: {f['cpu_s']}",
        f"per call: {pc['webhooks']} webhooks, {pc['redis_from_webhooks']} Redis round trips and "
        f"{pc['sql_from_webhooks']} SQL statements ({pc['sql_tx_from_webhooks']} transactions, "
        f"{pc['sql_conn_from_webhooks']} connection checkouts) in webhooks; "
        f"{pc['redis_commands_all_clients']} Redis commands from every client (INFO commandstats)",
        "  commands per call: " + ", ".join(f"{c} {n}" for c, n in pc["redis_commands_by_name"].items()),
        f"rq jobs per call: {pc['rq_jobs']} (mean {pc['rq_job_ms_mean']} ms inside the job, fork not included)",
    ]
    mem, sm = rep["memory"], rep["samples"]
    out.append(f"web worker RSS kB: start {mem['web_worker_rss_kb']['start']} end {mem['web_worker_rss_kb']['end']}; "
               f"redis used_memory {mem['redis_used_memory'].get('start')} -> {mem['redis_used_memory'].get('end')}")
    if o["duration"]:
        out.append(
            f"soak samples ({sm['count']}, every {sm['every_s']} s; first/last/max): "
            f"web RSS total kB {sm['web_rss_total_kb']}, redis keys {sm['redis_keys']}, "
            f"keys without TTL {sm['redis_keys_without_ttl']}, used_memory {sm['redis_used_memory']}"
        )
    es = rep["end_state"]
    rk = es["redis_keys"]
    out += [f"redis keys: {rk['before']} before, {rk['after']} after; new without TTL {rk['persistent_new_count']}; "
            f"expiring {rk['expiring_new']}; rq {rk['rq_new']}",
            f"SQL: {es['sql']}; rq failed jobs {es['rq_failed_jobs']}; webhook failures {es['web_errors']}",
            "",
            f"callers {inv['callers']}: {inv['outcomes']}; accounted for exactly once: {inv['accounted_once']}",
            "invariant: " + ("OK" if inv["ok"] else "FAILED\n  " + "\n  ".join(inv["failures"]))]
    out += [f"warning: {w}" for w in inv["warnings"]]
    return "\n".join(out)
