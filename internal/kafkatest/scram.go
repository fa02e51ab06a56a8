package kafkatest

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// scramClient is the client side of SCRAM (RFC 5802), which sarama leaves to
// its users. Passwords are used as they are, without SASLprep: enough for the
// ASCII credentials of the test broker.
type scramClient struct {
	newHash func() hash.Hash
	nonce   func() string // replaced by tests for the RFC's fixed vectors

	user, password, authzID string
	step                    int
	clientNonce             string
	clientFirstBare         string
	gs2Header               string
	serverSignature         []byte
	done                    bool
}

func newSCRAMClient(newHash func() hash.Hash) *scramClient {
	return &scramClient{newHash: newHash, nonce: randomNonce}
}

func randomNonce() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// saslName escapes the two characters SCRAM reserves in names.
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func (c *scramClient) Begin(user, password, authzID string) error {
	c.user, c.password, c.authzID = user, password, authzID
	c.step, c.done, c.serverSignature = 0, false, nil
	return nil
}

func (c *scramClient) Done() bool { return c.done }

func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		return c.clientFirst(), nil
	case 2:
		return c.clientFinal(challenge)
	case 3:
		return "", c.verifyServerFinal(challenge)
	default:
		return "", errors.New("scram: conversation already finished")
	}
}

func (c *scramClient) clientFirst() string {
	c.gs2Header = "n,,"
	if c.authzID != "" {
		c.gs2Header = "n,a=" + saslName(c.authzID) + ","
	}
	c.clientNonce = c.nonce()
	c.clientFirstBare = "n=" + saslName(c.user) + ",r=" + c.clientNonce
	return c.gs2Header + c.clientFirstBare
}

// attributes splits "k=v,k=v"; values may contain '='.
func attributes(msg string) map[byte]string {
	attrs := make(map[byte]string)
	for _, part := range strings.Split(msg, ",") {
		if len(part) >= 2 && part[1] == '=' {
			attrs[part[0]] = part[2:]
		}
	}
	return attrs
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (c *scramClient) clientFinal(serverFirst string) (string, error) {
	attrs := attributes(serverFirst)
	if e, ok := attrs['e']; ok {
		return "", fmt.Errorf("scram: server refused: %s", e)
	}
	nonce, salt64, iter64 := attrs['r'], attrs['s'], attrs['i']
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) {
		return "", errors.New("scram: server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return "", fmt.Errorf("scram: bad salt %q", salt64)
	}
	iterations, err := strconv.Atoi(iter64)
	if err != nil || iterations < 1 {
		return "", fmt.Errorf("scram: bad iteration count %q", iter64)
	}

	salted, err := pbkdf2.Key(c.newHash, c.password, salt, iterations, c.newHash().Size())
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	clientKey := c.hmac(salted, "Client Key")
	h := c.newHash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)

	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2Header)) + ",r=" + nonce
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	proof := c.hmac(storedKey, authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSignature = c.hmac(c.hmac(salted, "Server Key"), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (c *scramClient) verifyServerFinal(serverFinal string) error {
	attrs := attributes(serverFinal)
	if e, ok := attrs['e']; ok {
		return fmt.Errorf("scram: server refused: %s", e)
	}
	got, err := base64.StdEncoding.DecodeString(attrs['v'])
	if err != nil || subtle.ConstantTimeCompare(got, c.serverSignature) != 1 {
		return errors.New("scram: server signature does not match: not the server that knows the password")
	}
	c.done = true
	return nil
}
