package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/tsubame-rt/tsubame/node/pki"
)

func TestNewChecksIdentity(t *testing.T) {
	c := DefaultConfig()
	c.HTTP.Listen = "127.0.0.1:0"
	c.Routes = []Route{helloRoute}
	if _, err := New(context.Background(), c, Options{}); err == nil || !strings.Contains(err.Error(), "[tls]") {
		t.Errorf("no TLS: error %v, want one naming [tls]", err)
	}
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := ca.IssueTLS("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	c.Name = "gw-2"
	if _, err := New(context.Background(), c, Options{ClusterTLS: tlsConf}); err == nil || !strings.Contains(err.Error(), `"gw-1"`) {
		t.Errorf("name mismatch: error %v, want one naming the certificate's gw-1", err)
	}
}
