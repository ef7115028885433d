# The third-party timing client of `ack_latency`: reads a JSON spec from
# stdin ({url, warmup, samples, targets: [{name, subject, payloads, ok}]}),
# sends warmup + samples sequential requests to every target, the targets
# taking turns on every round so all of them see the same machine, and
# prints {name: [microseconds, ...]} of the timed ones on stdout. A target
# with `ok` must answer a JSON reply whose "ok" is true (checked untimed).
# Payload i of a target is payloads[i % len(payloads)] (signed commands are
# one each: an agent refuses a replayed one).
import asyncio, json, sys, time
import nats

async def main():
    spec = json.load(sys.stdin)
    nc = await nats.connect(spec["url"])
    targets = spec["targets"]
    warmup, samples = spec["warmup"], spec["samples"]
    timed = {t["name"]: [] for t in targets}
    for i in range(warmup + samples):
        for t in targets:
            payload = t["payloads"][i % len(t["payloads"])].encode()
            started = time.perf_counter_ns()
            reply = await nc.request(t["subject"], payload, timeout=2)
            elapsed = time.perf_counter_ns() - started
            if t["ok"] and json.loads(reply.data).get("ok") is not True:
                sys.exit(f"{t['name']}: request {i} not ok: {reply.data[:300]!r}")
            if i >= warmup:
                timed[t["name"]].append(elapsed / 1000)
    await nc.close()
    print(json.dumps(timed))

asyncio.run(main())
