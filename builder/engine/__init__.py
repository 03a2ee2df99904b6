"""Everything that touches the outside world. Docker is reached three ways, each for what
it does best, all from here and all failing with `FactoryError`s:

- the `docker` CLI through the one command runner (`engine.commands`): registry and image
  queries (`imagetools`, `pull`, `image inspect`, `history`), clean-up, `info`, `login`.
  Each call has a timeout (a stalled registry is a failure, not an absence), stop-signal
  handling and redaction. python-on-whales 0.81 can't stand in here: it has no timeouts,
  no `image history`, and its `imagetools inspect` returns a parsed manifest without the
  bytes its digest is computed from.
- python-on-whales for `buildx build` and `buildx inspect` (`engine.buildx`): typed
  options and a streamed log.
- testcontainers for the smoke stage's containers (`engine.containers`): start, exec with
  a timeout, remove.
"""
