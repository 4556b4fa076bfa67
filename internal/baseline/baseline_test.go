package baseline

import (
	"strings"
	"testing"
)

// The generated nginx config is the setup users compare with: round-robin
// over every upstream with keepalive, HTTP/1.1 upstream connections, no
// access log, one process, every path inside the temporary prefix.
func TestNginxConf(t *testing.T) {
	c := nginxConf("/tmp/x", 8081, []string{"127.0.0.1:1", "127.0.0.1:2"})
	for _, want := range []string{
		"master_process off;", "worker_processes 1;", "access_log off;",
		"server 127.0.0.1:1;", "server 127.0.0.1:2;", "keepalive 64;",
		"listen 127.0.0.1:8081;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`,
		"pid /tmp/x/nginx.pid;", "proxy_temp_path /tmp/x/proxy;",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
	if strings.Count(c, "{") != strings.Count(c, "}") {
		t.Errorf("unbalanced braces:\n%s", c)
	}
}
