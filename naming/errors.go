package naming

import "errors"

// ErrUnmanagedRepository: a repository name outside cvi/, vi/<ns>/, vd/<ns>/.
// Test for it with errors.Is.
var ErrUnmanagedRepository = errors.New("repository is outside cvi/<name>, vi/<namespace>/<name>, vd/<namespace>/<name>")
