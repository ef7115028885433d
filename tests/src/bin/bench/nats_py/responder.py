# The simplest peer: a nats-py responder echoing every request (URL SUBJECT).
import asyncio, sys
import nats

async def main():
    nc = await nats.connect(sys.argv[1])
    async def respond(msg):
        await msg.respond(msg.data)
    await nc.subscribe(sys.argv[2], cb=respond)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
