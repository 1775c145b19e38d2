package loadkit

// LeanPoll is the part of shared.PollResponse a load client checks.
// Decoding only this keeps the client's CPU cost per answer down, which
// matters when client and server share two cores.
type LeanPoll struct {
	Epoch    string `json:"epoch"`
	Messages []struct {
		Seq  uint64 `json:"seq"`
		Text string `json:"text"`
	} `json:"messages"`
	Next  uint64 `json:"next"`
	Gap   bool   `json:"gap"`
	Reset bool   `json:"reset"`
}
