package admin

import "errors"

// ErrNotRunning: no dvcr serve answers on the admin socket.
var ErrNotRunning = errors.New("no dvcr serve is running on the admin socket")
