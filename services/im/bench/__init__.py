"""`im-bench`: load generator and measuring tool for a running imcluster server.

    cli       argument parsing, scenario setup, the report on stdout
    setup     users, logins and groups over the HTTP API; server metrics
    http      a minimal asyncio HTTP/1.1 client (one request per connection)
    plan      what each client connection does, serialisable for worker processes
    worker    the connections themselves: send, receive, count, time
    runner    runs workers in-process or as subprocesses, prints progress, merges results
    stats     pure helpers: percentiles, pacing schedule, pairing, splitting
    report    the report as a dict (`--json`) and as text
    echo      a plain `websockets` echo server, the ceiling this machine allows
    loop      runs the bench on uvloop
"""
