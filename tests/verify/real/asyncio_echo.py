"""A byte echo server on CPython's asyncio streams (the standard library's
event loop, its non-blocking socket code and its write buffering): correct
code eagain verify did not write, judged by tests/verify (CMakeLists.txt).

    python3 asyncio_echo.py PORT
"""
import asyncio, sys
async def handle(r, w):
    while True:
        data = await r.read(65536)
        if not data:
            break
        w.write(data)
        await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(handle, '127.0.0.1', int(sys.argv[1]))
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
