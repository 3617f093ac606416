#!/usr/bin/perl
# A TCP proxy on loopback that holds every byte for DELAY ms in each
# direction: a link with a round trip of 2 x DELAY and no bandwidth bound,
# for measuring what flow control (HTTP/2 windows) does over a real link
# without a kernel qdisc.  Used by bench/run.sh and t/api_http2_window.t.
#
#   tools/delay_proxy.pl --to 127.0.0.1:8080 [--listen 0] [--delay 25]
#                        [--max-seconds 3600]
#
# Prints "port N" on stdout once it listens (--listen 0: a free port),
# then serves until killed or --max-seconds pass.  Each direction of a
# connection holds at most 64 MB in flight; past that it stops reading,
# as a full link would.

use strict;
use warnings;
use Getopt::Long;
use IO::Socket::INET;
use IO::Select;
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Time::HiRes qw(time);

my ($to, $listen, $delay_ms, $max_s) = (undef, 0, 25, 3600);
GetOptions('to=s' => \$to, 'listen=i' => \$listen, 'delay=f' => \$delay_ms,
           'max-seconds=f' => \$max_s)
    and defined $to or die "usage: $0 --to HOST:PORT [--listen PORT]"
                           . " [--delay MS] [--max-seconds S]\n";

my $DELAY = $delay_ms / 1000;
my $MAX_QUEUED = 64 << 20;
my $CHUNK = 256 << 10;

$SIG{PIPE} = 'IGNORE';
$SIG{TERM} = $SIG{INT} = sub { exit 0 };

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                LocalPort => $listen, Listen => 128,
                                ReuseAddr => 1, Proto => 'tcp')
    or die "listen: $!\n";
$srv->blocking(0);
$| = 1;
print "port ", $srv->sockport, "\n";

# one half-pipe per direction: bytes read from {from} wait in {q} as
# [due, data] and are written to {to} once due
my %pipes;      # fileno of the reading socket => half-pipe
my %by_out;     # fileno of the writing socket => half-pipe
my $end = time + $max_s;

sub close_pair {
    my ($p) = @_;
    for my $h ($p, $p->{peer}) {
        delete $pipes{ fileno $h->{from} } if defined fileno $h->{from};
        delete $by_out{ fileno $h->{to} } if defined fileno $h->{to};
    }
    close $p->{from};
    close $p->{to};
}

sub accept_one {
    my $c = $srv->accept or return;
    my $u = IO::Socket::INET->new(PeerAddr => $to, Proto => 'tcp');
    unless ($u) {
        close $c;
        return;
    }
    $_->blocking(0) for $c, $u;
    setsockopt($_, 6, 1, 1) for $c, $u;         # TCP_NODELAY
    my $a = { from => $c, to => $u, q => [], queued => 0, eof => 0 };
    my $b = { from => $u, to => $c, q => [], queued => 0, eof => 0 };
    $a->{peer} = $b;
    $b->{peer} = $a;
    $pipes{ fileno $c } = $a;
    $pipes{ fileno $u } = $b;
    $by_out{ fileno $u } = $a;
    $by_out{ fileno $c } = $b;
}

while (time < $end) {
    my $now = time;
    my $rd = IO::Select->new($srv);
    my $wr = IO::Select->new;
    my $wait = 1;
    for my $p (values %pipes) {
        $rd->add($p->{from}) if !$p->{eof} && $p->{queued} < $MAX_QUEUED;
        next unless @{ $p->{q} };
        my $due = $p->{q}[0][0] - $now;
        if ($due <= 0) {
            $wr->add($p->{to});
        } elsif ($due < $wait) {
            $wait = $due;
        }
    }
    my ($r, $w) = IO::Select->select($rd, $wr, undef, $wait);
    $now = time;

    for my $h (@{ $w // [] }) {
        my $p = $by_out{ fileno($h) // -1 } or next;
        while (@{ $p->{q} } && $p->{q}[0][0] <= $now) {
            my $e = $p->{q}[0];
            my $n = syswrite($p->{to}, $e->[1]);
            if (!defined $n) {
                last if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                close_pair($p);
                last;
            }
            $p->{queued} -= $n;
            if ($n < length $e->[1]) {
                substr($e->[1], 0, $n, '');
                last;
            }
            shift @{ $p->{q} };
        }
        # the reader's end, passed on once everything before it is out
        if ($p->{eof} && !@{ $p->{q} } && defined fileno $p->{to}) {
            shutdown($p->{to}, 1);
            close_pair($p) if $p->{peer}{eof} && !@{ $p->{peer}{q} };
        }
    }

    for my $h (@{ $r // [] }) {
        if ($h == $srv) {
            accept_one();
            next;
        }
        my $p = $pipes{ fileno($h) // -1 } or next;
        my $n = sysread($h, my $buf, $CHUNK);
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            close_pair($p);
            next;
        }
        if ($n == 0) {
            $p->{eof} = 1;
            push @{ $p->{q} }, [$now + $DELAY, ''];
            next;
        }
        push @{ $p->{q} }, [$now + $DELAY, $buf];
        $p->{queued} += $n;
    }
}
