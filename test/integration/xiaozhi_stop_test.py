"""Graceful stop of xiaozhi-server (SIGTERM) with active sessions and
save.dir set: every finished turn of every session is in the save files
(DIR/<device-id with ':' -> '_'>.jsonl, one JSON line per turn, format in
XZ-INTERFACE.md), every session is closed, the process exits 0 and prints
`stopped` as its last line.

usage: xiaozhi_stop_test.py path/to/xiaozhi-server
"""
import asyncio
import json
import os
import shutil
import tempfile

from xiaozhi_device import (Device, XServer, load_opk, server_binary)

BIN = server_binary()
TTS24 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                     "data", "xiaozhi", "tts_24k_60ms.opk")
SPEECH = load_opk("speech_16k_60ms.opk")
LLM = "Sure thing. Here is the answer."


async def main():
    tmp = tempfile.mkdtemp(prefix="xz-save-")
    s = XServer(BIN, "pipeline.mode=scripted", "scripted.tts_file=" + TTS24,
                "scripted.llm_text=" + LLM, "save.dir=" + tmp)
    try:
        devs = []
        turns = {}               # device index -> user texts of its turns
        # 12 sessions: 2 finished turns each; then 4 of them start a third
        # reply (speaking at stop time), 4 are streaming audio (listening),
        # 4 are idle
        for i in range(12):
            d = Device(s.host, s.port)
            await d.ota("full")
            await d.connect()
            await d.hello()
            devs.append(d)

        async def turn(i, d, k):
            text = "question %d from device %d" % (k, i)
            n = len(d.msgs)
            await d.listen("detect", text=text)
            await d.wait_reply_done(60, n)
            turns.setdefault(i, []).append(text)
        await asyncio.gather(*[turn(i, d, 0) for i, d in enumerate(devs)])
        await asyncio.gather(*[turn(i, d, 1) for i, d in enumerate(devs)])
        speaking = devs[0:4]
        listening = devs[4:8]
        for i, d in enumerate(speaking):
            n = len(d.msgs)
            await d.listen("detect", text="unfinished %d" % i)
            await d.wait_for(lambda m: m.kind == "binary", 30, n,
                             "reply audio")
        mics = []
        for d in listening:
            await d.listen("start", mode="manual")
            await d.send_packets(SPEECH[:5], pace=False)
            mics.append(asyncio.ensure_future(
                d.send_packets(SPEECH * 3, pace=True)))
        s.proc.send_signal(15)
        # every session ends: a Close frame (or the TCP end) within bounds
        ends = await asyncio.gather(*[d.wait_closed(30) for d in devs])
        for d, m in zip(devs, ends):
            if m.kind == "close":
                assert m.code in (1000, 1001), m
        for t in mics:
            t.cancel()
        code, out, err = s.stop(timeout=30)
        assert code == 0, (code, err[-3000:])
        lines = [ln for ln in s.lines if ln.strip()]
        assert lines and lines[-1].strip() == "stopped", lines[-5:]
        # the save files
        for i, d in enumerate(devs):
            path = os.path.join(tmp, d.mac.replace(":", "_") + ".jsonl")
            assert os.path.exists(path), "no save file for %s" % d.mac
            with open(path, encoding="utf-8") as f:
                rows = [json.loads(x) for x in f if x.strip()]
            users = [r.get("user") for r in rows]
            for text in turns[i]:
                assert text in users, (d.mac, text, users)
            for r in rows:
                assert r.get("session_id") == d.session_id, r
                assert r.get("device_id", "").lower() == d.mac, r
                assert isinstance(r.get("ts"), (int, float)), r
                if r.get("user") in turns[i]:
                    assert r.get("assistant") == LLM, r
        print("graceful stop: %d sessions, %d saved turns, exit 0, stopped"
              % (len(devs), sum(len(t) for t in turns.values())))
    finally:
        s.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
