"""200 scripted devices on one xiaozhi-server at once (PROTOCOL.md 9 item
39): every device does OTA, the upgrade, hello and a full turn with audio
both ways at real-time pace (half in auto mode, ended by the server's VAD,
half push-to-talk), and every ordering rule (items 16-21) holds for each.
Hello latency and pacing figures are printed, not asserted (bench/ has the
timed figures); the bounds here are failure bounds.

usage: xiaozhi_many_test.py path/to/xiaozhi-server [N]
Environment: XZ_DEVICES=N (default 200), XZ_MODE=auto|manual (all devices
in one mode; default: even devices auto, odd ones push-to-talk).
"""
import asyncio
import os
import sys
import time

from xiaozhi_device import (Device, LagMonitor, XServer, check_session,
                            load_opk, pacing, server_binary)

BIN = server_binary()
N = int(sys.argv[2]) if len(sys.argv) > 2 else int(
    os.environ.get("XZ_DEVICES", "200"))
SPEECH = load_opk("speech_16k_60ms.opk")
SILENCE = load_opk("silence_16k_60ms.opk")
LAG = None


async def connect(s, i):
    d = Device(s.host, s.port, mcp=(i % 3 == 0))
    r = await d.ota("full")
    assert r.status == 200, r
    await d.connect()
    return d


async def one(d, i, results):
    await d.hello(timeout=30)
    mode = os.environ.get("XZ_MODE") or ("auto" if i % 2 == 0 else "manual")
    n = len(d.msgs)
    await d.listen("start", mode=mode)
    if mode == "manual":
        await d.send_packets(SPEECH[:60], pace=True)
        await d.listen("stop")
        await d.wait_reply_done(120, n)
        got = [m.payload for m in d.msgs[n:] if m.kind == "binary"]
        assert got == SPEECH[:60], "device %d: echo differs (%d packets)" % (
            i, len(got))
    else:
        done = asyncio.Event()

        async def mic():
            await d.send_packets(SPEECH, pace=True)
            while not done.is_set() and not d.closed:
                await d.send_packets(SILENCE[4:], pace=True)
        t = asyncio.ensure_future(mic())
        try:
            await d.wait_for(lambda m: m.type() == "stt", 120, n,
                             "stt of device %d" % i)
            await d.wait_reply_done(120, n)
        finally:
            done.set()
        await t
    bad = check_session(d, lag=LAG)
    times = [m.t for m in d.msgs[n:] if m.kind == "binary"]
    results[i] = (d.hello_latency, pacing(times, d.downlink_frame_ms or 60),
                  bad)
    await d.close()


async def main():
    global LAG
    LAG = LagMonitor()
    # the provider queue is sized for the test's burst (200 utterances
    # can end in the same instant); what a full queue answers is
    # xiaozhi_session_test's test_provider_queue_full
    s = XServer(BIN, "pipeline.max_queue=1000")
    try:
        results = {}
        t0 = time.monotonic()
        # all devices connected first, then all hellos and turns at once
        devs = await asyncio.gather(*[connect(s, i) for i in range(N)],
                                    return_exceptions=True)
        errors = [(i, e) for i, e in enumerate(devs)
                  if isinstance(e, BaseException)]
        for i, e in errors[:10]:
            print("device %d: %r" % (i, e))
        assert not errors, "%d of %d upgrades failed" % (len(errors), N)
        print("%d devices connected in %.1f s" % (N, time.monotonic() - t0))
        t0 = time.monotonic()
        done = await asyncio.gather(*[one(d, i, results)
                                      for i, d in enumerate(devs)],
                                    return_exceptions=True)
        errors = [(i, e) for i, e in enumerate(done)
                  if isinstance(e, BaseException)]
        for i, e in errors[:10]:
            print("device %d: %r" % (i, e))
        assert not errors, "%d of %d devices failed" % (len(errors), N)
        bad = {i: r[2] for i, r in results.items() if r[2]}
        for i, b in list(bad.items())[:10]:
            print("device %d: %s" % (i, "; ".join(b)))
        hl = sorted(r[0] * 1000 for r in results.values())
        pa = [r[1] for r in results.values() if r[1]]
        ahead = sorted(p["max_ahead_ms"] for p in pa)
        avg = sorted(p["avg_interval_ms"] for p in pa
                     if p["avg_interval_ms"])
        print("%d devices, all turns done in %.1f s" %
              (N, time.monotonic() - t0))
        print("hello latency ms: p50 %.1f p99 %.1f max %.1f" %
              (hl[len(hl) // 2], hl[int(len(hl) * 0.99) - 1], hl[-1]))
        print("max audio ahead ms: p50 %.0f max %.0f; avg interval ms: "
              "min %.1f max %.1f" % (ahead[len(ahead) // 2], ahead[-1],
                                     avg[0], avg[-1]))
        print("this process's worst event-loop lag: %.0f ms (pacing "
              "margins include it)" % (LAG.worst() * 1000))
        assert not bad, "%d devices saw protocol violations" % len(bad)
        assert s.alive(), "server died"
        code, out, err = s.stop()
        assert code == 0, (code, err[-2000:])
        print("all %d devices correct" % N)
    finally:
        s.kill()


if __name__ == "__main__":
    asyncio.run(main())
