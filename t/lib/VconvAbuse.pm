package VconvAbuse;

=head1 NAME

VconvAbuse - raw HTTP/1.1 over one socket, for the abuse tests

=head1 SYNOPSIS

    my $c = VconvAbuse->new($port);                 # keep-alive client
    my $r = $c->request('POST', '/api/jobs?format=mp4', $body,
                        'X-File-Name' => 'junk.bin');
    # $r = { status, headers => {lc name => value}, body, json }
    my $m = VconvAbuse::metrics($ng);               # {name{labels} => n}

A curl process per request is too slow for thousands of uploads; this
client sends them one after another on a kept-alive connection (and
reconnects when the server closes it).  Requests are plain
Content-Length ones; the response is read by its Content-Length.

=cut

use strict;
use warnings;
use IO::Socket::INET;
use JSON::PP;

sub new {
    my ($class, $port) = @_;
    my $self = bless { port => $port }, $class;
    return $self;
}

sub _connect {
    my ($self) = @_;
    $self->{sock} = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1', PeerPort => $self->{port},
        Proto => 'tcp', Timeout => 10) or die "connect: $!\n";
    binmode $self->{sock};
}

sub _read_response {
    my ($self) = @_;
    my $s = $self->{sock};
    my $buf = '';
    local $SIG{ALRM} = sub { die "response timeout\n" };
    alarm 60;
    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread($s, $buf, 65536, length $buf);
        if (!$n) { alarm 0; return undef; }
    }
    my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
    my @lines = split /\r\n/, $head;
    my ($status) = $lines[0] =~ m{^HTTP/1\.\d (\d{3})} or do {
        alarm 0; die "bad status line: $lines[0]\n" };
    my %h;
    for (@lines[1 .. $#lines]) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }
    my $len = $h{'content-length'} // 0;
    while (length $rest < $len) {
        my $n = sysread($s, $rest, $len - length $rest, length $rest);
        last unless $n;
    }
    alarm 0;
    my $r = { status => $status, headers => \%h, body => $rest };
    $r->{json} = eval { decode_json($rest) } if ($h{'content-type'} // '')
        =~ /json/;
    if (($h{connection} // '') =~ /close/i) {
        close $s;
        delete $self->{sock};
    }
    return $r;
}

# one request; reconnects once when a kept-alive connection was closed
sub request {
    my ($self, $method, $path, $body, %hdr) = @_;
    $body //= '';
    for my $try (1, 2) {
        $self->_connect unless $self->{sock};
        my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
                . "Content-Length: " . length($body) . "\r\n";
        $req .= "$_: $hdr{$_}\r\n" for sort keys %hdr;
        $req .= "\r\n" . $body;
        my $ok = eval {
            local $SIG{PIPE} = 'IGNORE';
            my $off = 0;
            while ($off < length $req) {
                my $n = syswrite($self->{sock}, $req, length($req) - $off,
                                 $off);
                die "write: $!\n" unless defined $n;
                $off += $n;
            }
            1;
        };
        my $r = $ok ? $self->_read_response : undef;
        return $r if $r;
        close $self->{sock} if $self->{sock};
        delete $self->{sock};
    }
    die "no response to $method $path\n";
}

sub close {
    my ($self) = @_;
    close $self->{sock} if $self->{sock};
    delete $self->{sock};
}

# GET /api/metrics as { 'name{labels}' => value }
sub metrics {
    my ($ng) = @_;
    my $r = $ng->get('/api/metrics');
    my %m;
    for (split /\n/, $r->{body} // '') {
        next if /^#/;
        my ($k, $v) = /^(\S+)\s+(\S+)$/ or next;
        $m{$k} = $v;
    }
    return \%m;
}

1;
