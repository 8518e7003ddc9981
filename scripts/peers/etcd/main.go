// Command etcd is the etcd server from go.etcd.io/etcd/server/v3, built as kube-apiserver's
// storage peer: the server module holds etcdmain but no main package of its own.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
