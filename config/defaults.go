package config

// DefaultYAML is the configuration `dvcr serve` runs on without --config:
// filesystem storage under ./data, loopback only, no auth, GC schedule off.
const DefaultYAML = `version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: ./data
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
dvcr:
  adminSocket: ./data/admin.sock
  gc:
    schedule: ""
`
