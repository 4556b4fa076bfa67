package baseline

import (
	"strings"
	"testing"
	"time"
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

func TestParseWrk(t *testing.T) {
	out := `Running 10s test @ http://127.0.0.1:8080/hello?name=x
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.02ms  30.00ms   90.00%
  Latency Distribution
     50%    1.90ms
     75%    2.40ms
     90%    3.10ms
     99%    6.50ms
  123456 requests in 10.00s, 15.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  12345.60
Transfer/sec:      1.50MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 123456 || r.Rate != 12345.6 || r.P50 != 1900*time.Microsecond || r.P99 != 6500*time.Microsecond || r.Errors != 7 {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parseWrk("unable to connect"); err == nil {
		t.Fatal("no error for a report without a rate")
	}
}
