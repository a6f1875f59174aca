/**
 * Preloaded into soketi by harness.py (`node --require ...`) unless
 * `Soketi(fix_http_status=False)`: makes soketi's HTTP API answer errors with their
 * real HTTP status, as Pusher does.
 *
 * Why: soketi 1.6.1's middlewares (CORS, rate-limit headers) call
 * `res.writeHeader()` before the handler decides the status, and uWebSockets
 * answers "200 OK" as soon as a header is written, ignoring any later
 * `writeStatus()`. So an oversize event, an 11-event batch, or a bad signature all
 * come back as HTTP 200 with `{"error": ..., "code": 413|400|401}` in the body, and
 * the Python `pusher` library returns that dict instead of raising. Pusher itself
 * answers 413/400/401, and the code under test must be exercised against that.
 *
 * How: every HTTP request goes through `HttpHandler.attachMiddleware`; there the
 * response object gets `writeHeader` calls buffered until the status is written
 * (or the response ends with the implicit 200). Nothing else changes.
 */
'use strict';

const path = require('path');

const soketiDist = path.join(path.dirname(require.resolve('@soketi/soketi/package.json')), 'dist');
const { HttpHandler } = require(path.join(soketiDist, 'http-handler.js'));

function deferHeadersUntilStatus(res) {
  if (res.__statusFixApplied) return;
  res.__statusFixApplied = true;
  const writeHeader = res.writeHeader;
  const writeStatus = res.writeStatus;
  const end = res.end;
  const pending = [];
  let statusWritten = false;

  res.writeStatus = function (status) {
    if (!statusWritten) {
      statusWritten = true;
      writeStatus.call(this, status);
      for (const [key, value] of pending.splice(0)) writeHeader.call(this, key, value);
    }
    return this;
  };
  res.writeHeader = function (key, value) {
    if (statusWritten) return writeHeader.call(this, key, value);
    pending.push([key, value]);
    return this;
  };
  res.end = function (...args) {
    if (!statusWritten) this.writeStatus('200 OK');
    return end.apply(this, args);
  };
}

const attachMiddleware = HttpHandler.prototype.attachMiddleware;
HttpHandler.prototype.attachMiddleware = function (res, functions) {
  deferHeadersUntilStatus(res);
  return attachMiddleware.call(this, res, functions);
};
