package car_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
)

func Example() {
	record := []byte{0xa1, 0x64, 't', 'e', 'x', 't', 0x62, 'h', 'i'} // {"text": "hi"}
	rc := dagcbor.SumCBOR(record)

	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, []cid.Cid{rc})
	if err != nil {
		panic(err)
	}
	if err := w.WriteBlock(rc, record); err != nil {
		panic(err)
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}

	r, err := car.NewReader(&buf, &car.Options{MaxTotal: 100 << 20})
	if err != nil {
		panic(err)
	}
	fmt.Println("root:", r.Roots()[0])
	for {
		c, data, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(c, len(data), "bytes")
	}
	// Output:
	// root: bafyreies5hu6esvempxuqwb5mrvp4wbhmown37ulx3e5ogrlwdueesypom
	// bafyreies5hu6esvempxuqwb5mrvp4wbhmown37ulx3e5ogrlwdueesypom 9 bytes
}

// A firehose #commit carries its blocks as a small CAR built in memory.
func ExampleAppendBlock() {
	commit := []byte{0xa0} // stands in for the signed commit block
	cc := dagcbor.SumCBOR(commit)
	b := make([]byte, 0, car.HeaderSize(cc)+car.SectionSize(cc, len(commit)))
	b = car.AppendHeader(b, cc)
	b = car.AppendBlock(b, cc, commit)
	fmt.Println(len(b), "bytes:", cc)
	// Output: 97 bytes: bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua
}
