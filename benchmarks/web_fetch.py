"""Fetching a search's pages: one shared HTTP client vs a client per page, same run.

Serves N small HTML pages (and a robots.txt) on 127.0.0.1 and fetches them all at once with
`fetch_page`, as the researcher does after a web search, alternating the two ways over a few
rounds. Prints JSON with the median wall time of each and their ratio. The researcher uses
one shared client; the ratio says what that saves.

    python benchmarks/web_fetch.py [--pages 8] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from myninja.skills.research.fetch import RobotsCache, fetch_page
from myninja.skills.research.fetch_guard import WebClient

LOCAL = ["127.0.0.1"]  # the pages are served on loopback, which fetches refuse unless allowed
PAGE = (
    b"<html><head><title>Otters</title></head><body><nav>Home</nav><article><h1>Otters</h1>"
    + b"<p>"
    + b"Otters hold hands while they sleep. " * 60
    + b"</p>"
    + b"</article><footer>Cookies</footer></body></html>"
)


class Site(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        robots = self.path == "/robots.txt"
        body = b"User-agent: *\nDisallow: /private/\n" if robots else PAGE
        self.send_response(200)
        self.send_header("Content-Type", "text/plain" if robots else "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


async def fetch_all(urls: list[str], shared: bool) -> float:
    robots = RobotsCache()  # each round reads robots.txt afresh, as a first search does
    start = time.perf_counter()
    if shared:
        async with WebClient(allow_hosts=LOCAL) as client:
            await asyncio.gather(*(fetch_page(u, client=client, robots=robots) for u in urls))
    else:
        await asyncio.gather(*(fetch_page(u, robots=robots, allow_hosts=LOCAL) for u in urls))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    urls = [f"{base}/page{i}.html" for i in range(args.pages)]
    times: dict[str, list[float]] = {"client_per_page": [], "shared_client": []}
    try:
        asyncio.run(fetch_all(urls, shared=True))  # warm-up: imports, the extractor's first run
        for _ in range(args.rounds):
            times["client_per_page"].append(asyncio.run(fetch_all(urls, shared=False)))
            times["shared_client"].append(asyncio.run(fetch_all(urls, shared=True)))
    finally:
        httpd.shutdown()
        httpd.server_close()
    median = {name: statistics.median(values) for name, values in times.items()}
    print(
        json.dumps(
            {
                "benchmark": "web_fetch",
                "pages": args.pages,
                "rounds": args.rounds,
                "median_s": {name: round(value, 4) for name, value in median.items()},
                "ratio_client_per_page_over_shared": round(
                    median["client_per_page"] / median["shared_client"], 2
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
