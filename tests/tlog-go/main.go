// Command tlog-go is the independent implementation the fwsign transparency log is tested
// against: Go's golang.org/x/mod/sumdb/tlog (Merkle tree, proofs, tiles) and sumdb/note
// (signed notes). The Rust tests build it (GOPATH mode) and talk to it in JSON.
//
//	tlog-go gen NAME              print a new signing key and its verifier key, one per line
//	tlog-go sign SKEY < TEXT      sign a note text; print the signed note
//	tlog-go open VKEY < NOTE      verify a signed note; print its text, or fail
//	tlog-go tree < REQUEST        build a log of the requested leaves; print roots, proofs, tiles
//	tlog-go check < CLAIMS        check Rust-made roots and proofs; fail on the first bad one
package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

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
	Roots         []tlog.Hash   `json:"roots"`
	InclusionsP   [][]tlog.Hash `json:"inclusion_proofs"`
	ConsistencyP  [][]tlog.Hash `json:"consistency_proofs"`
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

func main() {
	if len(os.Args) < 2 {
		must(fmt.Errorf("usage: tlog-go gen|sign|open|tree|check"))
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
	default:
		must(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}
