// Command tlog-go is the independent implementation the fwsign transparency log is tested
// against: Go's golang.org/x/mod/sumdb/tlog (Merkle tree, proofs, tiles) and sumdb/note
// (signed notes). The Rust tests build it (GOPATH mode) and talk to it in JSON.
//
//	tlog-go gen NAME              print a new signing key and its verifier key, one per line
//	tlog-go sign SKEY < TEXT      sign a note text; print the signed note
//	tlog-go open VKEY < NOTE      verify a signed note; print its text, or fail
//	tlog-go tree < REQUEST        build a log of the requested leaves; print roots, proofs, tiles
//	tlog-go check < CLAIMS        check Rust-made roots and proofs; fail on the first bad one
//	tlog-go fetch URL VKEY        read a log served as C2SP tiles at URL: check its checkpoint's
//	                              signature, its root from the hash tiles, and every entry
//	                              bundle's leaves against the tree; print the size and root
package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Leaf is the data of leaf i in every test log: both sides derive it the same way.
func leaf(i int64) []byte { return []byte("fwsign test leaf " + strconv.FormatInt(i, 10)) }

type request struct {
	Leaves        int64      `json:"leaves"`
	Sizes         []int64    `json:"sizes"`
	Inclusions    [][2]int64 `json:"inclusions"`
	Consistencies [][2]int64 `json:"consistencies"`
}

type tile struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
}

type answer struct {
	Stored        []tlog.Hash   `json:"stored"`
	Roots         []tlog.Hash   `json:"roots"`
	Inclusions    [][]tlog.Hash `json:"inclusions"`
	Consistencies [][]tlog.Hash `json:"consistencies"`
	Tiles         []tile        `json:"tiles"`
}

// Claims are Rust-made: roots by size, inclusion and consistency proofs, in request order.
type claims struct {
	request
	Roots        []tlog.Hash   `json:"roots"`
	InclusionsP  [][]tlog.Hash `json:"inclusion_proofs"`
	ConsistencyP [][]tlog.Hash `json:"consistency_proofs"`
}

type store []tlog.Hash

func (s *store) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(*s)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = (*s)[x]
	}
	return out, nil
}

func build(n int64) *store {
	s := &store{}
	for i := int64(0); i < n; i++ {
		hashes, err := tlog.StoredHashes(i, leaf(i), s)
		must(err)
		*s = append(*s, hashes...)
	}
	return s
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlog-go:", err)
		os.Exit(1)
	}
}

func readAll() []byte {
	data, err := io.ReadAll(os.Stdin)
	must(err)
	return data
}

func tree() {
	var req request
	must(json.Unmarshal(readAll(), &req))
	s := build(req.Leaves)
	out := answer{Stored: *s}
	for _, size := range req.Sizes {
		root, err := tlog.TreeHash(size, s)
		must(err)
		out.Roots = append(out.Roots, root)
	}
	for _, p := range req.Inclusions {
		proof, err := tlog.ProveRecord(p[1], p[0], s)
		must(err)
		out.Inclusions = append(out.Inclusions, proof)
	}
	for _, p := range req.Consistencies {
		proof, err := tlog.ProveTree(p[1], p[0], s)
		must(err)
		out.Consistencies = append(out.Consistencies, proof)
	}
	for _, t := range tlog.NewTiles(8, 0, req.Leaves) {
		data, err := tlog.ReadTileData(t, s)
		must(err)
		out.Tiles = append(out.Tiles, tile{Path: t.Path(), Data: data})
	}
	must(json.NewEncoder(os.Stdout).Encode(out))
}

func check() {
	var c claims
	must(json.Unmarshal(readAll(), &c))
	for i, size := range c.Sizes {
		if size == 0 {
			continue
		}
		root, err := tlog.TreeHash(size, build(size))
		must(err)
		if root != c.Roots[i] {
			must(fmt.Errorf("root of size %d differs", size))
		}
	}
	rootOf := func(size int64) tlog.Hash {
		for i, s := range c.Sizes {
			if s == size {
				return c.Roots[i]
			}
		}
		must(fmt.Errorf("no root for size %d", size))
		return tlog.Hash{}
	}
	for i, p := range c.Inclusions {
		must(tlog.CheckRecord(c.InclusionsP[i], p[1], rootOf(p[1]), p[0], tlog.RecordHash(leaf(p[0]))))
	}
	for i, p := range c.Consistencies {
		must(tlog.CheckTree(c.ConsistencyP[i], p[1], rootOf(p[1]), p[0], rootOf(p[0])))
	}
	fmt.Printf("checked %d roots, %d inclusion proofs, %d consistency proofs\n",
		len(c.Sizes), len(c.Inclusions), len(c.Consistencies))
}

// httpTiles reads hash tiles from a C2SP tlog-tiles URL, whose paths drop Go's height element.
type httpTiles struct{ base string }

func (h httpTiles) Height() int { return 8 }

// c2spPath is the C2SP path of a Go tile: "tile/8/L/…" becomes "tile/L/…", "tile/8/data/…"
// becomes "tile/entries/…".
func c2spPath(t tlog.Tile) string {
	path := strings.TrimPrefix(t.Path(), "tile/8/")
	return "tile/" + strings.Replace(path, "data/", "entries/", 1)
}

func (h httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := get(h.base + "/" + c2spPath(t))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (h httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	return body, nil
}

func fetch(base, vkey string) {
	verifier, err := note.NewVerifier(vkey)
	must(err)
	signed, err := get(base + "/checkpoint")
	must(err)
	n, err := note.Open(signed, note.VerifierList(verifier))
	must(err)
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 || lines[0] != verifier.Name() {
		must(fmt.Errorf("checkpoint origin is not %q", verifier.Name()))
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	must(err)
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	must(err)
	var tree tlog.Tree
	tree.N = size
	copy(tree.Hash[:], rootBytes)
	// TileHashReader checks every tile it reads against the tree's root.
	hashes := tlog.TileHashReader(tree, httpTiles{base})
	root, err := tlog.TreeHash(size, hashes)
	must(err)
	if root != tree.Hash {
		must(fmt.Errorf("the tiles hash to %v, the checkpoint says %v", root, tree.Hash))
	}
	for first := int64(0); first < size; first += 256 {
		width := size - first
		if width > 256 {
			width = 256
		}
		bundle, err := get(base + "/" + c2spPath(tlog.Tile{H: 8, L: -1, N: first / 256, W: int(width)}))
		must(err)
		for i := first; i < first+width; i++ {
			if len(bundle) < 2 {
				must(fmt.Errorf("entry bundle ends before entry %d", i))
			}
			length := int(binary.BigEndian.Uint16(bundle))
			if len(bundle) < 2+length {
				must(fmt.Errorf("entry %d runs past its bundle", i))
			}
			entry := bundle[2 : 2+length]
			bundle = bundle[2+length:]
			proof, err := tlog.ProveRecord(size, i, hashes)
			must(err)
			must(tlog.CheckRecord(proof, size, tree.Hash, i, tlog.RecordHash(entry)))
		}
		if len(bundle) != 0 {
			must(fmt.Errorf("entry bundle %d has trailing bytes", first/256))
		}
	}
	fmt.Printf("size %d root %s\n", size, base64.StdEncoding.EncodeToString(root[:]))
}

func main() {
	if len(os.Args) < 2 {
		must(fmt.Errorf("usage: tlog-go gen|sign|open|tree|check|fetch"))
	}
	switch os.Args[1] {
	case "gen":
		skey, vkey, err := note.GenerateKey(rand.Reader, os.Args[2])
		must(err)
		fmt.Printf("%s\n%s\n", skey, vkey)
	case "sign":
		signer, err := note.NewSigner(os.Args[2])
		must(err)
		signed, err := note.Sign(&note.Note{Text: string(readAll())}, signer)
		must(err)
		os.Stdout.Write(signed)
	case "open":
		verifier, err := note.NewVerifier(os.Args[2])
		must(err)
		n, err := note.Open(readAll(), note.VerifierList(verifier))
		must(err)
		fmt.Print(n.Text)
	case "tree":
		tree()
	case "check":
		check()
	case "fetch":
		fetch(os.Args[2], os.Args[3])
	default:
		must(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}
