package decode

import "github.com/gopacket/gopacket"

// Layer types for the layers gopacket does not decode, numbered in a range
// gopacket leaves free.
var (
	layerTypeNFLOG     = gopacket.RegisterLayerType(1901, gopacket.LayerTypeMetadata{Name: "NFLOG"})
	layerTypeWireGuard = gopacket.RegisterLayerType(1902, gopacket.LayerTypeMetadata{Name: "WireGuard"})
	layerTypeTLSHello  = gopacket.RegisterLayerType(1903, gopacket.LayerTypeMetadata{Name: "TLSClientHello"})
	layerTypeHTTP      = gopacket.RegisterLayerType(1904, gopacket.LayerTypeMetadata{Name: "HTTP/1.x"})
)
