"""Server-side sessions for web frameworks: ``flask``, ``django`` and ``starlette``.

Each integration keeps only the session id in the cookie and the data in a
:class:`~pysessionmanager.SessionManager`, and follows the same rules:

- cookies are ``Secure``, ``HttpOnly`` and ``SameSite=Lax`` unless told otherwise
  (Django: with ``pysessionmanager.contrib.django.SessionMiddleware``);
- a visitor whose session stays empty gets no record and no cookie;
- a missing, forged, ended or expired cookie is simply no session;
- nothing is saved when the response is a server error (5xx);
- only the keys a request changed are written, so two requests of one
  visitor at once do not undo each other's changes;
- ``login`` moves the session to a fresh id owned by the user (against
  session fixation), and ``logout`` ends it.
"""
