#!/bin/sh
# ifupdown mapping (/etc/network/interfaces.d/oriel-dhcp): every wired card, whatever its name (enp0s3, enp0s4, ...),
# is brought up with the one "iface wired inet dhcp" stanza.
echo wired
