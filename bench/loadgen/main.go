// Command loadgen sends POST requests at a fixed rate (open loop) over keep-alive TLS and
// prints latency percentiles as JSON.
//
// Open loop: request i is due at start + i/rate whether or not earlier ones have finished,
// and its latency is measured from that due time, so a stalled server cannot hide its stall
// by slowing the generator down (the "coordinated omission" of closed-loop tools like wrk).
// Connections are kept alive and reused, as the API server does with its webhooks.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

type result struct {
	Rate        float64 `json:"rate"`
	DurationS   float64 `json:"duration_s"`
	Sent        int     `json:"sent"`
	OK          int     `json:"ok"`
	Errors      int     `json:"errors"`
	Late        int     `json:"late_sends"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	Connections int     `json:"max_connections"`
}

func main() {
	url := flag.String("url", "", "https://HOST:PORT/validate")
	ca := flag.String("ca", "", "CA certificate (PEM) to verify the server with")
	rate := flag.Float64("rate", 200, "requests per second")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	conns := flag.Int("conns", 16, "most connections open at once")
	bodies := flag.String("bodies", "", "comma-separated files, sent in rotation")
	flag.Parse()

	var payloads [][]byte
	for _, name := range strings.Split(*bodies, ",") {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		payloads = append(payloads, data)
	}
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(*ca)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		fmt.Fprintln(os.Stderr, "cannot read CA", *ca, err)
		os.Exit(2)
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxConnsPerHost:     *conns,
			MaxIdleConnsPerHost: *conns,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false,
		},
	}

	// Warm the connections up so that the measured window holds no handshakes.
	var warm sync.WaitGroup
	for i := 0; i < *conns; i++ {
		warm.Add(1)
		go func(i int) {
			defer warm.Done()
			send(client, *url, payloads[i%len(payloads)])
		}(i)
	}
	warm.Wait()

	total := int(*rate * duration.Seconds())
	latencies := make([]time.Duration, total)
	okFlags := make([]bool, total)
	interval := time.Duration(float64(time.Second) / *rate)
	late := 0
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		} else if wait < -time.Millisecond {
			late++
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			okFlags[i] = send(client, *url, payloads[i%len(payloads)])
			latencies[i] = time.Since(due)
		}(i, due)
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := result{Rate: *rate, DurationS: elapsed.Seconds(), Sent: total, Late: late, Connections: *conns}
	for _, ok := range okFlags {
		if ok {
			res.OK++
		} else {
			res.Errors++
		}
	}
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	pct := func(p float64) float64 {
		idx := int(p * float64(total-1))
		return float64(latencies[idx].Microseconds()) / 1000
	}
	res.P50Ms, res.P90Ms, res.P99Ms = pct(0.50), pct(0.90), pct(0.99)
	res.MaxMs = float64(latencies[total-1].Microseconds()) / 1000
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func send(client *http.Client, url string, body []byte) bool {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return false
	}
	// Read to the end so the connection goes back to the pool for reuse.
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err == nil && resp.StatusCode == http.StatusOK
}
