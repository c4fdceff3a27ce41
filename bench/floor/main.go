// Command floor is the least a validating admission webhook can do: it answers every
// AdmissionReview with allowed: true for its uid, over TLS, with the Go standard library only.
//
// It is the floor of SPEC §6's API-server benchmark: registered exactly like Guardrail, what it
// adds to a pod creation is what any webhook costs (the API server's call, TLS, JSON), so
// Guardrail's added latency and CPU per admitted pod are reported as a ratio to it.
//
//	floor -cert-dir DIR -bind 127.0.0.1:PORT    # DIR holds tls.crt and tls.key
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// review holds the only field of an AdmissionReview the answer needs; encoding/json skips the rest.
type review struct {
	Request struct {
		UID string `json:"uid"`
	} `json:"request"`
}

type response struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   struct {
		UID     string `json:"uid"`
		Allowed bool   `json:"allowed"`
	} `json:"response"`
}

const maxBody = 3 << 20 // the API server sends at most about 3 MiB

// reviews counts the answers, so the benchmark can tell when the API server calls the floor
// (an allow-all webhook is otherwise invisible from the API side).
var reviews atomic.Int64

func validate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in review
	if err := json.Unmarshal(body, &in); err != nil || in.Request.UID == "" {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	var out response
	out.APIVersion = "admission.k8s.io/v1"
	out.Kind = "AdmissionReview"
	out.Response.UID = in.Request.UID
	out.Response.Allowed = true
	reviews.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&out); err != nil {
		log.Printf("writing the answer: %v", err)
	}
}

func main() {
	certDir := flag.String("cert-dir", "", "directory holding tls.crt and tls.key")
	bind := flag.String("bind", "127.0.0.1:8443", "address to listen on")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(
		filepath.Join(*certDir, "tls.crt"), filepath.Join(*certDir, "tls.key"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/validate", validate)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "{\"reviews\": %d}\n", reviews.Load())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	server := &http.Server{
		Addr:              *bind,
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		// HTTP/1.1 only, as Guardrail (gunicorn) and Gatekeeper (controller-runtime's default)
		// serve it: the API server then talks to every webhook of the benchmark the same way.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	log.Printf("floor: serving https://%s/validate", *bind)
	if err := server.ListenAndServeTLS("", ""); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
