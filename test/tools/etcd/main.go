// Command etcd is the etcd server, built from source so that the envtest
// harness needs no downloaded binaries. It is a module of its own because the
// etcd 3.6 server libraries conflict with the etcd 3.7 client libraries that
// k8s.io/kubernetes v1.37 pins in the parent tools module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
