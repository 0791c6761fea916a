package tui

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hooktrace/hooktrace/decode"
)

// treeNode is one line of the layers pane: a layer, a field, or a list
// or object of fields.
type treeNode struct {
	label    string
	kids     []*treeNode
	open     bool
	layer    int    // index of the layer it belongs to
	path     string // a field's key as decode.FieldSpan names it; "" for a layer's line
	boundary bool
}

// treeBuilder is a decode.FieldWriter that builds the nodes of a layer.
type treeBuilder struct {
	stack []*treeNode
	layer int
}

func (t *treeBuilder) top() *treeNode { return t.stack[len(t.stack)-1] }

// path names a new child of the top node as decode.FieldSpan keys do:
// "key" in the layer, "list[i]" for an item, "list[i].key" in an object.
func (t *treeBuilder) path(key string) string {
	p := t.top()
	switch {
	case key == "":
		return p.path + "[" + strconv.Itoa(len(p.kids)) + "]"
	case p.path == "":
		return key
	}
	return p.path + "." + key
}

func (t *treeBuilder) leaf(key, val string) {
	p := t.top()
	label := val
	if key != "" {
		label = key + ": " + val
	}
	p.kids = append(p.kids, &treeNode{label: label, layer: t.layer, path: t.path(key)})
}

func (t *treeBuilder) Str(key, val string)       { t.leaf(key, strconv.Quote(val)) }
func (t *treeBuilder) Text(key string, v []byte) { t.leaf(key, strconv.Quote(string(v))) }
func (t *treeBuilder) Uint(key string, v uint64) { t.leaf(key, strconv.FormatUint(v, 10)) }
func (t *treeBuilder) Hex(key string, v uint64)  { t.leaf(key, "0x"+strconv.FormatUint(v, 16)) }
func (t *treeBuilder) Bool(key string, v bool)   { t.leaf(key, strconv.FormatBool(v)) }
func (t *treeBuilder) IP(key string, b []byte) {
	ip, _ := netip.AddrFromSlice(b)
	t.leaf(key, ip.String())
}
func (t *treeBuilder) MAC(key string, b []byte) { t.leaf(key, macString(b)) }

func (t *treeBuilder) BeginList(key string) {
	n := &treeNode{label: key, layer: t.layer, path: t.path(key)}
	t.top().kids = append(t.top().kids, n)
	t.stack = append(t.stack, n)
}

func (t *treeBuilder) EndList() { t.pop() }

func (t *treeBuilder) BeginObject() {
	p := t.top()
	n := &treeNode{label: "[" + strconv.Itoa(len(p.kids)) + "]", layer: t.layer, path: t.path("")}
	p.kids = append(p.kids, n)
	t.stack = append(t.stack, n)
}

func (t *treeBuilder) EndObject() { t.pop() }

func (t *treeBuilder) pop() {
	if len(t.stack) > 1 {
		n := t.top()
		t.stack = t.stack[:len(t.stack)-1]
		if len(n.kids) > 0 && !strings.Contains(n.label, ":") {
			n.label += " (" + strconv.Itoa(len(n.kids)) + ")"
		}
	}
}

// buildTree makes the layers pane's nodes for a packet, outer to inner,
// with a boundary line where a tunnel or ICMP quote opens an inner packet.
func buildTree(p *decode.Packet) []*treeNode {
	var roots []*treeNode
	f := &p.Frame
	head := fmt.Sprintf("Frame: %d bytes on the wire, %d captured", f.Len, len(f.Data))
	if f.Netns != "" || f.Iface != "" {
		head += ", " + strings.TrimPrefix(f.Netns+"/"+f.Iface, "/")
	}
	if d := f.Dir.String(); d != "" {
		head += " " + d
	}
	roots = append(roots, &treeNode{label: head, layer: -1})
	if f.Comment != "" {
		roots = append(roots, &treeNode{label: "comment: " + strconv.Quote(f.Comment), layer: -1})
	}
	for i := range p.Layers {
		l := &p.Layers[i]
		if i > 0 && l.Depth > p.Layers[i-1].Depth {
			what := p.Layers[i-1].Tunnel.String()
			if what == "" {
				what = "tunnel"
			}
			roots = append(roots, &treeNode{label: fmt.Sprintf("── inside %s (depth %d) ──", what, l.Depth), layer: i, boundary: true})
		}
		n := &treeNode{label: layerTitle(l), layer: i, open: true}
		b := &treeBuilder{stack: []*treeNode{n}, layer: i}
		l.WriteFields(b)
		if l.Err != nil {
			n.kids = append(n.kids, &treeNode{label: "error: " + l.Err.Error(), layer: i})
		}
		roots = append(roots, n)
	}
	return roots
}

func layerTitle(l *decode.Layer) string {
	s := strings.ToUpper(l.Proto.String())
	if l.Quoted {
		s = "quoted " + s
	}
	if l.Tunnel != decode.TunnelNone {
		s += "  (opens " + l.Tunnel.String() + ")"
	}
	if l.Err != nil {
		s += "  [error]"
	}
	return s
}

// flatLine is a visible line of the tree.
type flatLine struct {
	node  *treeNode
	depth int
}

// flatten lists the visible lines: closed nodes hide their children.
func flatten(nodes []*treeNode, depth int, out []flatLine) []flatLine {
	for _, n := range nodes {
		out = append(out, flatLine{n, depth})
		if n.open {
			out = flatten(n.kids, depth+1, out)
		}
	}
	return out
}

func setOpen(nodes []*treeNode, open bool) {
	for _, n := range nodes {
		if len(n.kids) > 0 {
			n.open = open
		}
		setOpen(n.kids, open)
	}
}

func (m *Model) layersKey(s string) {
	d := m.ensureDetail()
	if d == nil {
		return
	}
	lines := flatten(d.tree, 0, nil)
	switch s {
	case "enter", "right", "l", "left", "h":
		if d.cursor >= len(lines) {
			return
		}
		n := lines[d.cursor].node
		switch {
		case s == "enter" && len(n.kids) > 0:
			n.open = !n.open
		case (s == "right" || s == "l") && len(n.kids) > 0:
			n.open = true
		case s == "left" || s == "h":
			if n.open && len(n.kids) > 0 {
				n.open = false
			} else {
				d.cursor = parentLine(lines, d.cursor)
			}
		}
		return
	case "e", "E":
		setOpen(d.tree, s == "e")
		d.cursor = 0
		return
	}
	if cur, ok := move(s, d.cursor, len(lines), m.layout().detail.h-1); ok {
		d.cursor = cur
	}
}

// parentLine is the line of the node that contains line i.
func parentLine(lines []flatLine, i int) int {
	for j := i - 1; j >= 0; j-- {
		if lines[j].depth < lines[i].depth {
			return j
		}
	}
	return i
}

// selectedLayer is the layer of the line under the cursor, -1 for none.
func (d *detail) selectedLayer() int {
	if n := d.selectedNode(); n != nil {
		return n.layer
	}
	return -1
}

// selectedNode is the line under the cursor, nil for none.
func (d *detail) selectedNode() *treeNode {
	lines := flatten(d.tree, 0, nil)
	if d.cursor < len(lines) {
		return lines[d.cursor].node
	}
	return nil
}

func (m *Model) layersView(r rect) []string {
	out := []string{m.titleLine(paneLayers, paneNames[paneLayers], r.w)}
	d := m.ensureDetail()
	if d == nil {
		return pad(append(out, fit("  no packet selected", r.w)), r)
	}
	lines := flatten(d.tree, 0, nil)
	d.cursor = max(0, min(d.cursor, len(lines)-1))
	h := r.h - 1
	if d.cursor < d.ltop {
		d.ltop = d.cursor
	}
	if d.cursor >= d.ltop+h {
		d.ltop = d.cursor - h + 1
	}
	for i := d.ltop; i < min(len(lines), d.ltop+h); i++ {
		n := lines[i].node
		mark := "  "
		if len(n.kids) > 0 {
			mark = "▸ "
			if n.open {
				mark = "▾ "
			}
		}
		text := fit(strings.Repeat("  ", lines[i].depth)+mark+n.label, r.w)
		switch {
		case i == d.cursor && m.focus == paneLayers:
			text = m.theme.selected.Render(text)
		case i == d.cursor:
			text = m.theme.title.Render(text)
		case n.boundary:
			text = m.theme.boundary.Render(text)
		}
		out = append(out, text)
	}
	return pad(out, r)
}

// pad fills a pane to its height with blank lines.
func pad(lines []string, r rect) []string {
	for len(lines) < r.h {
		lines = append(lines, strings.Repeat(" ", r.w))
	}
	return lines[:r.h]
}
