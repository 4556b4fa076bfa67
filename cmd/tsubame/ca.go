package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
)

func init() {
	register(command{"ca", "make the cluster CA and issue node certificates (init, issue)", runCA})
}

const caUsage = `usage:
  tsubame ca init  [--dir DIR] [--name NAME]
  tsubame ca issue [--dir DIR] [--role node|gateway|operator] NAME [--host HOST]...

init writes a new cluster CA into DIR: ca.pem (give it to every node and
gateway) and ca-key.pem (keep it secret; mode 0600). It never replaces an
existing CA.

issue signs a certificate for the node or gateway NAME with the CA in DIR and
writes NAME.pem and NAME-key.pem beside it. The certificate is valid as a
server and as a client, its Common Name is NAME (the member's identity), and
it covers 127.0.0.1, ::1, localhost, NAME and every --host (an IP address or
DNS name peers dial it by). --role (default node) is written into the
certificate and bounds what its holder may ask of nodes: a gateway may only
submit LPs and move their blobs; an operator may only install, remove and
list components (docs/security.md).
`

func runCA(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, caUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "init":
		return runCAInit(args[1:], stdout, stderr)
	case "issue":
		return runCAIssue(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "tsubame ca: unknown subcommand %q (want init or issue)\n\n%s", args[0], caUsage)
	return 2
}

func runCAInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame ca init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "certs", "`directory` to write ca.pem and ca-key.pem into")
	name := fs.String("name", "tsubame-ca", "the CA's common `name`")
	fs.Usage = func() { fmt.Fprint(stderr, caUsage, "\nflags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tsubame ca init: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ca, err := pki.NewCA(*name)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame ca init:", err)
		return 1
	}
	if err := ca.Save(*dir); err != nil {
		fmt.Fprintln(stderr, "tsubame ca init:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s and %s (keep the key secret)\n",
		filepath.Join(*dir, pki.CACertFile), filepath.Join(*dir, pki.CAKeyFile))
	return 0
}

// hostList collects repeated --host flags.
type hostList []string

func (h *hostList) String() string     { return strings.Join(*h, ",") }
func (h *hostList) Set(v string) error { *h = append(*h, v); return nil }

func runCAIssue(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame ca issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "certs", "`directory` holding the CA; the certificate is written there too")
	var hosts hostList
	fs.Var(&hosts, "host", "an IP address or DNS `name` peers reach this member by (repeatable)")
	roleFlag := fs.String("role", "node", "what the holder may do: node (everything a node does), gateway (submit LPs and move their blobs only) or operator (install, remove and list components only)")
	fs.Usage = func() { fmt.Fprint(stderr, caUsage, "\nflags:\n"); fs.PrintDefaults() }
	// Flags may come before or after NAME: the flag package stops at the
	// first argument, so parse again after taking it.
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(names) != 1 {
		fmt.Fprintf(stderr, "tsubame ca issue: want exactly one NAME, got %d\n\n%s", len(names), caUsage)
		return 2
	}
	name := names[0]
	role, err := pki.ParseRole(*roleFlag)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame ca issue:", err)
		return 2
	}
	if err := pki.CheckName(name); err != nil {
		fmt.Fprintln(stderr, "tsubame ca issue:", err)
		return 1
	}
	ca, err := pki.LoadCA(filepath.Join(*dir, pki.CACertFile), filepath.Join(*dir, pki.CAKeyFile))
	if err != nil {
		fmt.Fprintf(stderr, "tsubame ca issue: %v (run 'tsubame ca init --dir %s' first?)\n", err, *dir)
		return 1
	}
	certPEM, keyPEM, err := ca.IssueRole(name, role, hosts...)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame ca issue:", err)
		return 1
	}
	if name == "ca" {
		fmt.Fprintln(stderr, `tsubame ca issue: the name "ca" is the CA's own files; pick another`)
		return 1
	}
	certPath, keyPath := filepath.Join(*dir, name+".pem"), filepath.Join(*dir, name+"-key.pem")
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			fmt.Fprintf(stderr, "tsubame ca issue: %s already exists; remove it to issue %s again\n", p, name)
			return 1
		}
	}
	if err := pki.WriteNew(keyPath, keyPEM, 0o600); err != nil {
		fmt.Fprintln(stderr, "tsubame ca issue:", err)
		return 1
	}
	if err := pki.WriteNew(certPath, certPEM, 0o644); err != nil {
		os.Remove(keyPath)
		fmt.Fprintln(stderr, "tsubame ca issue:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s and %s for %s (role %s)\n", certPath, keyPath, name, role)
	return 0
}
