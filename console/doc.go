// Package console is DVCR's web console: a page for cluster and project
// images (list with live phase and progress, details, create from an HTTP
// link, a container image or an upload from the browser, delete) and for the
// garbage collector (last runs, what a run would delete, run now).
//
// Security model, the same as `kubectl proxy`: the console runs on the
// operator's machine, listens on loopback only and talks to the API server
// with the operator's own kubeconfig identity. It holds no privileges of its
// own, so the API server's RBAC decides every action; its refusals reach the
// page as the API server worded them. Between the browser and the console:
//   - the printed URL carries a one-time token, exchanged for an HttpOnly,
//     SameSite=Strict session cookie on first use; every other request
//     without a valid session gets 401;
//   - state-changing requests must carry the session's CSRF token in a
//     header, which a cross-site form or image tag cannot set;
//   - the Host header must name the loopback listener, which defeats DNS
//     rebinding;
//   - the page and its scripts are embedded, the Content-Security-Policy
//     allows only the console's own origin: the page makes no external
//     request.
//
// Uploads are proxied, not buffered: the browser sends the file as the
// request body, the console streams it to the upload URL that the image's
// status publishes (it never forwards to a URL the request names).
// Downloads as stored are streamed the same way; a raw download of a
// qcow2, vmdk or vdi image is converted into a temporary sparse file first
// (the conversion seeks), at most Options.RawConversions at once, and that
// file is gone when the download ends, however it ends.
package console
