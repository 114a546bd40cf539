"""The browser console: sign-in by challenge, sessions, server-rendered pages and GraphiQL
served from the app itself (no script or style from another host).

* :mod:`api.console.challenge`: the sign-in message a party key signs (shared with the CLI);
* :mod:`api.console.store`: challenges and sessions in the ledger database;
* :mod:`api.console.security`: the session cookie, CSRF tokens and security headers;
* :mod:`api.console.pages`: the routes under ``/console``;
* :mod:`api.console.signing`: approvals signed by a key that lives in the browser;
* :mod:`api.console.graphiql`: the GraphiQL page of ``GET /graphql``.

This module imports nothing, so the command line can import the challenge format cheaply.
"""
