package plc_test

import (
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/reservoir-atproto/reservoir/plc"
)

// Create an account's DID, then move it to another PDS.
func ExampleCreateGenesis() {
	rotation, _ := atcrypto.GeneratePrivateKeyK256() // controls the DID
	signing, _ := atcrypto.GeneratePrivateKeyK256()  // signs repository commits
	rotationPub, _ := rotation.PublicKey()
	signingPub, _ := signing.PublicKey()

	genesis, did, err := plc.CreateGenesis(plc.Account{
		Handle:       "alice.example.com",
		Endpoint:     "https://pds.example.com",
		SigningKey:   signingPub,
		RotationKeys: []atcrypto.PublicKey{rotationPub},
	}, rotation)
	if err != nil {
		panic(err)
	}
	// A directory would check this before accepting the genesis.
	_, err = plc.Validate(did, nil, genesis, time.Now())
	fmt.Println(plc.IsPLC(did.String()), err)

	move, _ := plc.Update(genesis, plc.SetEndpoint("https://new-pds.example.com"))
	_ = plc.Sign(move, rotation)
	log := []plc.LogEntry{{DID: did, Op: genesis, CID: genesis.CID(), CreatedAt: time.Now()}}
	_, err = plc.Validate(did, log, move, time.Now())
	fmt.Println(err, plc.Data(did, move).Services["atproto_pds"].Endpoint)
	// Output:
	// true <nil>
	// <nil> https://new-pds.example.com
}
