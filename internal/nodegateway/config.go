package nodegateway

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/tsubame-rt/tsubame/gateway"
	"github.com/tsubame-rt/tsubame/node"
)

// LoadConfig reads a node's TOML file that may hold a [gateway] section
// (its tables [gateway.http], [gateway.dispatch], [[gateway.route]] ...):
// the node's config, and the embedded gateway's when the section is there
// (nil otherwise). Each part is decoded as strictly as its own file would
// be, and errors name the file's own lines.
func LoadConfig(path string) (node.Config, *gateway.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return node.Config{}, nil, fmt.Errorf("read config: %w", err)
	}
	nodePart, gwPart, found := Split(data)
	nc, err := node.ParseConfig(path, nodePart)
	if err != nil {
		return node.Config{}, nil, err
	}
	if !found {
		return nc, nil, nil
	}
	gc, err := gateway.ParseConfig(path, gwPart)
	if err != nil {
		return node.Config{}, nil, fmt.Errorf("[gateway]: %w", err)
	}
	return nc, &gc, nil
}

// Split separates a node file's [gateway] section from the rest: the
// gateway's part has its tables renamed as a gateway's own file spells them
// ([gateway.http] becomes [http], [gateway] the top level). Both parts keep
// every line where it was, the other part's lines left blank, so a decoder's
// line numbers are the file's. found reports whether a [gateway] table was
// there. (A gateway key written as a dotted key outside the section is left
// in the node's part, whose decoder reports it as unknown.)
func Split(data []byte) (nodePart, gwPart []byte, found bool) {
	lines := bytes.Split(data, []byte("\n"))
	var n, g bytes.Buffer
	inGateway := false
	for i, line := range lines {
		if name, array, ok := header(string(line)); ok {
			rest, isGateway := strings.CutPrefix(name, "gateway")
			isGateway = isGateway && (rest == "" || rest[0] == '.')
			inGateway = isGateway
			if isGateway {
				found = true
				line = nil
				if rest != "" {
					line = []byte("[" + rest[1:] + "]")
					if array {
						line = []byte("[[" + rest[1:] + "]]")
					}
				}
			}
		}
		if inGateway {
			g.Write(line)
		} else {
			n.Write(line)
		}
		if i < len(lines)-1 {
			n.WriteByte('\n')
			g.WriteByte('\n')
		}
	}
	return n.Bytes(), g.Bytes(), found
}

// header reads a table header line: [name] or [[name]], with spaces
// around the name and a trailing comment allowed.
func header(line string) (name string, array, ok bool) {
	s := strings.TrimSpace(line)
	if i := strings.IndexByte(s, '#'); i >= 0 && !strings.ContainsAny(s[:i], `"'`) {
		s = strings.TrimSpace(s[:i])
	}
	switch {
	case strings.HasPrefix(s, "[[") && strings.HasSuffix(s, "]]"):
		return strings.TrimSpace(s[2 : len(s)-2]), true, true
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		return strings.TrimSpace(s[1 : len(s)-1]), false, true
	}
	return "", false, false
}
