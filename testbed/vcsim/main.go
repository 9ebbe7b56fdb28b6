// Command mangrove-vcsim serves VMware's own vCenter simulator (govmomi's simulator library,
// as Debian packages it) for the Mangrove testbed and tests.
//
// Build offline with Debian's Go and packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o mangrove-vcsim .
//
// It prints one line, "vcsim ready: <url>", once it serves, and runs until killed.
// It adds VirtualMachine.ExportVm, which the simulator lacks (see export.go).
// The password is read from a file so it never appears in process arguments.
//
// Without -shape it serves the simulator's generated model (DC0, DC0_C0, DC0_C0_H0…);
// with -shape FILE it serves the world described there (see shape.go).
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	username := flag.String("username", "administrator@vsphere.local", "the one user the simulator accepts")
	passwordFile := flag.String("secret-file", "", "file holding that user's password (required)")
	certFile := flag.String("tls-cert", "", "PEM certificate to serve HTTPS with (plain HTTP without it)")
	keyFile := flag.String("tls-key", "", "PEM key of -tls-cert")
	tlsDir := flag.String("tls-dir", "", "serve HTTPS with DIR/cert.pem and DIR/key.pem, creating them and their CA DIR/ca.pem if missing")
	shapeFile := flag.String("shape", "", "JSON file describing the world to serve (replaces -cluster, -host, -standalone-host, -vm, -ds)")
	clusters := flag.Int("cluster", 1, "clusters per datacenter")
	hosts := flag.Int("host", 3, "hosts per cluster")
	standalone := flag.Int("standalone-host", 0, "standalone hosts per datacenter")
	vms := flag.Int("vm", 2, "VMs per resource pool")
	datastores := flag.Int("ds", 1, "datastores")
	flag.Parse()
	log.SetPrefix("mangrove-vcsim: ")

	if *passwordFile == "" {
		log.Fatal("-secret-file is required")
	}
	raw, err := os.ReadFile(*passwordFile)
	if err != nil {
		log.Fatalf("cannot read the password file: %v", err)
	}
	password := strings.TrimRight(string(raw), "\r\n")
	if password == "" {
		log.Fatalf("the password file %s is empty", *passwordFile)
	}
	if *tlsDir != "" && *certFile != "" {
		log.Fatal("-tls-dir and -tls-cert are alternatives; give one")
	}

	var model *simulator.Model
	var dirs []string
	if *shapeFile != "" {
		shape, err := readShape(*shapeFile)
		if err != nil {
			log.Fatal(err)
		}
		model, err = newShapedModel()
		if err != nil {
			log.Fatalf("cannot create the simulator model: %v", err)
		}
		dirs, err = shape.apply(context.Background(), model)
		if err != nil {
			removeDirs(dirs)
			model.Remove()
			log.Fatalf("cannot build the world of %s: %v", *shapeFile, err)
		}
	} else {
		model = simulator.VPX()
		model.Datacenter = 1
		model.Cluster = *clusters
		model.ClusterHost = *hosts
		model.Host = *standalone
		model.Machine = *vms
		model.Datastore = *datastores
		if err := model.Create(); err != nil {
			log.Fatalf("cannot create the simulator model: %v", err)
		}
		// The generated model registers each datastore once per host; list it once.
		fixDatastores()
	}
	model.Service.RegisterEndpoints = true
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, password)}
	switch {
	case *tlsDir != "":
		cert, err := loadOrCreateTLS(*tlsDir)
		if err != nil {
			log.Fatalf("cannot set up TLS in %s: %v", *tlsDir, err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	case *certFile != "":
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("cannot load the TLS certificate: %v", err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	server := model.Service.NewServer()
	// Nobody knows the address before the ready line below, so no request races this.
	server.Config.Handler = withExportVm(server.Config.Handler)
	u := *server.URL
	u.User = nil
	fmt.Printf("vcsim ready: %s\n", u.String())
	// Whoever started us may stop reading stdout once it has the ready line (a detached
	// testbed process outlives its starter); later output goes to stderr, the log, so no
	// write can hit a closed pipe and kill the simulator with SIGPIPE.
	if err := syscall.Dup2(int(os.Stderr.Fd()), int(os.Stdout.Fd())); err != nil {
		log.Printf("cannot point stdout at stderr: %v", err)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	server.Close()
	model.Remove()
	removeDirs(dirs)
}
