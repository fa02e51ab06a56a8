package kafkatest

import (
	"crypto/sha1" //nolint:gosec // RFC 5802's test vector is SCRAM-SHA-1
	"crypto/sha256"
	"hash"
	"strings"
	"testing"
)

// The example conversations of RFC 5802 (SHA-1) and RFC 7677 (SHA-256).
var scramVectors = []struct {
	name                                               string
	newHash                                            func() hash.Hash
	clientNonce, clientFirst, serverFirst, clientFinal string
	serverFinal                                        string
}{
	{
		name: "RFC5802-SHA-1", newHash: sha1.New,
		clientNonce: "fyko+d2lbbFgONRv9qkxdawL",
		clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
		clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
	},
	{
		name: "RFC7677-SHA-256", newHash: sha256.New,
		clientNonce: "rOprNGfwEbeRWgbNEkqO",
		clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
	},
}

func fixedNonceClient(newHash func() hash.Hash, nonce string) *scramClient {
	c := newSCRAMClient(newHash)
	c.nonce = func() string { return nonce }
	return c
}

func TestSCRAMVectors(t *testing.T) {
	for _, v := range scramVectors {
		t.Run(v.name, func(t *testing.T) {
			c := fixedNonceClient(v.newHash, v.clientNonce)
			if err := c.Begin("user", "pencil", ""); err != nil {
				t.Fatal(err)
			}
			first, err := c.Step("")
			if err != nil || first != v.clientFirst {
				t.Fatalf("client-first %q, %v; want %q", first, err, v.clientFirst)
			}
			final, err := c.Step(v.serverFirst)
			if err != nil || final != v.clientFinal {
				t.Fatalf("client-final %q, %v; want %q", final, err, v.clientFinal)
			}
			if c.Done() {
				t.Fatal("done before the server's signature was checked")
			}
			if _, err := c.Step(v.serverFinal); err != nil {
				t.Fatalf("server-final refused: %v", err)
			}
			if !c.Done() {
				t.Fatal("not done after the server-final message")
			}
		})
	}
}

func TestSCRAMRejectsBadServer(t *testing.T) {
	v := scramVectors[1]
	cases := map[string]func(c *scramClient) error{
		"wrong signature": func(c *scramClient) error {
			if _, err := c.Step(v.serverFirst); err != nil {
				return err
			}
			_, err := c.Step("v=" + strings.Repeat("A", 44))
			return err
		},
		"nonce not extended": func(c *scramClient) error {
			_, err := c.Step("r=" + v.clientNonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
			return err
		},
		"foreign nonce": func(c *scramClient) error {
			_, err := c.Step("r=someoneelse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
			return err
		},
		"server error": func(c *scramClient) error {
			_, err := c.Step("e=unknown-user")
			return err
		},
		"bad iterations": func(c *scramClient) error {
			_, err := c.Step(strings.Replace(v.serverFirst, "i=4096", "i=x", 1))
			return err
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			c := fixedNonceClient(v.newHash, v.clientNonce)
			_ = c.Begin("user", "pencil", "")
			if _, err := c.Step(""); err != nil {
				t.Fatal(err)
			}
			if err := run(c); err == nil {
				t.Fatal("accepted")
			}
			if c.Done() {
				t.Fatal("done after a failed exchange")
			}
		})
	}
}

func TestSCRAMEscapesNames(t *testing.T) {
	c := fixedNonceClient(sha256.New, "abc")
	_ = c.Begin("a=b,c", "pw", "z,y")
	first, _ := c.Step("")
	if want := "n,a=z=2Cy,n=a=3Db=2Cc,r=abc"; first != want {
		t.Fatalf("client-first %q, want %q", first, want)
	}
}
