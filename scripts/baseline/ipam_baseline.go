// The straightforward IPAM step, as the original does it, for scripts/bench_ipam.py:
// decode the base64 bitmap, scan bit by bit from lastIp (wrapping to the pool start), set the
// bit, re-encode. Standard library only. Input on stdin, one JSON object:
//   {"alloc": "<base64>", "start": <first pool index>, "end": <last pool index>,
//    "last": <lastIp index>, "runs": <timed repetitions>}
// Output: one JSON object with per-run nanoseconds, each run starting from the same input.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

type input struct {
	Alloc string `json:"alloc"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	Last  int    `json:"last"`
	Runs  int    `json:"runs"`
}

func isSet(bits []byte, i int) bool { return bits[i/8]&(0x80>>uint(i%8)) != 0 }

func allocate(alloc string, start, end, last int) (string, int, error) {
	bits, err := base64.StdEncoding.DecodeString(alloc)
	if err != nil {
		return "", 0, err
	}
	from := last + 1
	if from < start || from > end {
		from = start
	}
	found := -1
	for i := from; i <= end; i++ {
		if !isSet(bits, i) {
			found = i
			break
		}
	}
	if found < 0 {
		for i := start; i < from; i++ {
			if !isSet(bits, i) {
				found = i
				break
			}
		}
	}
	if found < 0 {
		return "", 0, fmt.Errorf("pool exhausted")
	}
	bits[found/8] |= 0x80 >> uint(found%8)
	return base64.StdEncoding.EncodeToString(bits), found, nil
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	samples := make([]int64, 0, in.Runs)
	index := -1
	for run := 0; run < in.Runs; run++ {
		began := time.Now()
		_, found, err := allocate(in.Alloc, in.Start, in.End, in.Last)
		samples = append(samples, time.Since(began).Nanoseconds())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		index = found
	}
	out, _ := json.Marshal(map[string]interface{}{"ns": samples, "index": index})
	fmt.Println(string(out))
}
