#!/usr/bin/perl
# tus 1.0.0 (vconv_tus): the protocol's edge cases in raw HTTP, the job
# converting while the PATCHes arrive, checksum, termination, expiry,
# CORS, and a PATCH over HTTP/2.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha1_base64);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use Test::More;
use Time::HiRes qw(sleep time);
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# A streamable input (Matroska) long enough to be mid-conversion while
# its upload goes on, and an MP4 for the HTTP/2 case.
VconvNginx::_run('ffmpeg', '-nostdin', '-v', 'error', '-y',
                 '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=6',
                 '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=6',
                 '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
                 '-g', '25', '-c:a', 'aac', '-shortest', "$dir/clip.mkv");
my $mkv = "$dir/clip.mkv";
my $data = do { local $/; open my $fh, '<:raw', $mkv or die $!; <$fh> };
my $len = length $data;
cmp_ok($len, '>', 200_000, "the clip is big enough to upload in pieces ($len)");
my $mp4 = VconvNginx::make_media($dir, 'mp4');
my $slow = VconvNginx::make_media($dir, 'slow', duration => 20);

my $tus_loc = <<'EOF';
        location /api/uploads/ {
            vconv_tus;
            client_max_body_size 50m;
            vconv_cors http://app.example;
        }
EOF

sub b64 { encode_base64($_[0], '') }

sub meta {
    my (%m) = @_;
    return join ',', map { "$_ " . b64($m{$_}) } sort keys %m;
}

# one request on its own connection: (status, {lc header => value}, body)
sub raw {
    my ($ng, $method, $path, $h, $body, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ng->port, Proto => 'tcp',
                                  Timeout => 10) or die "connect: $!";
    binmode $s;
    my %h = (Host => 'localhost', Connection => 'close', %{ $h // {} });
    $h{'Content-Length'} = $o{length} // length($body // '')
        if defined $body || defined $o{length};
    my $req = "$method $path HTTP/1.1\r\n"
        . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n";
    print $s $req;
    print $s $body if defined $body;
    return $s if $o{keep};
    return read_answer($s);
}

sub read_answer {
    my ($s) = @_;
    local $/;
    my $resp = <$s> // '';
    close $s;
    my ($head, $b) = split /\r\n\r\n/, $resp, 2;
    my @l = split /\r\n/, $head // '';
    my $st = (shift(@l) // '') =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0;
    my %hh;
    for (@l) {
        $hh{lc $1} = exists $hh{lc $1} ? "$hh{lc $1}, $2" : $2
            if /^([^:]+):\s*(.*)$/;
    }
    return ($st, \%hh, $b // '');
}

my %TUS = ('Tus-Resumable' => '1.0.0');
my %OCT = (%TUS, 'Content-Type' => 'application/offset+octet-stream');

sub create {
    my ($ng, %m) = @_;
    my ($st, $h, $b) = raw($ng, 'POST', '/api/uploads/',
        { %TUS, 'Upload-Length' => $m{length} // $len,
          'Upload-Metadata' => meta(%{ $m{meta} // {} }) });
    my ($id) = ($h->{location} // '') =~ m{/api/uploads/([^/]+)$};
    return ($st, $h, $b, $id);
}

sub patch {
    my ($ng, $id, $off, $chunk, %extra) = @_;
    return raw($ng, 'PATCH', "/api/uploads/$id",
               { %OCT, 'Upload-Offset' => $off, %extra }, $chunk);
}

sub head_offset {
    my ($ng, $id) = @_;
    my ($st, $h) = raw($ng, 'HEAD', "/api/uploads/$id", \%TUS);
    return $st == 200 ? $h->{'upload-offset'} : "status $st";
}

sub input_size {
    my ($ng, $id) = @_;
    return -s $ng->store . "/$id/input";
}

# reuseport: each connection goes to a worker at random, so the PATCHes
# of one upload land on both workers, not only on the job's owner
my $ng = VconvNginx->new(
    server => $tus_loc
        . "        location = /tus-log { return 204; }\n",
    # $vconv_job_id in a tus location once crashed the worker (it read the
    # tus request's context as an upload's)
    http => "    log_format tus '\$pid \$request_method \$status"
        . " \$vconv_job_id \$vconv_job_status';\n"
        . "    access_log %%PREFIX%%/logs/tus.log tus;\n",
    listen_opts => 'reuseport', workers => 2)->start;

# --- discovery --------------------------------------------------------------
{
    my ($st, $h) = raw($ng, 'OPTIONS', '/api/uploads/', {});
    is($st, 204, 'OPTIONS -> 204');
    is($h->{'tus-version'}, '1.0.0', 'Tus-Version 1.0.0');
    is($h->{'tus-resumable'}, '1.0.0', 'Tus-Resumable on OPTIONS');
    is(join(',', sort split /,/, $h->{'tus-extension'} // ''),
       'checksum,creation,creation-with-upload,expiration,termination',
       'Tus-Extension lists the five extensions');
    is($h->{'tus-max-size'}, 50 * 1024 * 1024, 'Tus-Max-Size is client_max_body_size');
    is($h->{'tus-checksum-algorithm'}, 'sha1', 'Tus-Checksum-Algorithm sha1');
}

# --- creation refusals: nothing is made --------------------------------------
{
    my ($st, $h, $b) = raw($ng, 'POST', '/api/uploads/',
                           { 'Upload-Length' => $len });
    is($st, 412, 'creation without Tus-Resumable -> 412');
    is($h->{'tus-version'}, '1.0.0', '... with Tus-Version');

    ($st, $h, $b) = raw($ng, 'POST', '/api/uploads/',
                        { 'Tus-Resumable' => '0.2.2', 'Upload-Length' => $len });
    is($st, 412, 'creation with another Tus-Resumable -> 412');

    ($st, $h, $b) = create($ng, meta => { filename => 'a.mkv', format => 'bogus' });
    is($st, 400, 'bad option in Upload-Metadata -> 400');
    like($b, qr/"unknown_format"/, '... unknown_format, as a POST query says');
    ($st, $h, $b) = create($ng, meta => { format => 'mp4', height => 'x' });
    is($st, 400, 'bad height in Upload-Metadata -> 400');
    ($st, $h, $b) = create($ng, meta => { format => 'mp4', nonsense => '1' });
    like($b, qr/"unknown_option"/, 'unknown option in Upload-Metadata -> unknown_option');
    ($st) = raw($ng, 'POST', '/api/uploads/',
                { %TUS, 'Upload-Length' => $len,
                  'Upload-Metadata' => 'format !!notbase64' });
    is($st, 400, 'Upload-Metadata that is not base64 -> 400');

    ($st, $h, $b) = create($ng, length => 60 * 1024 * 1024, meta => { format => 'mp4' });
    is($st, 413, 'Upload-Length over client_max_body_size -> 413');
    ($st) = raw($ng, 'POST', '/api/uploads/', { %TUS });
    is($st, 400, 'no Upload-Length -> 400');
    ($st) = raw($ng, 'POST', '/api/uploads/',
                { %TUS, 'Upload-Defer-Length' => 1 });
    is($st, 400, 'Upload-Defer-Length -> 400 (not offered)');
    is_deeply($ng->store_entries, [], 'no refused creation left anything');
}

# --- an upload in pieces, converting while they arrive -----------------------
my $id;
{
    my ($st, $h, $b);
    ($st, $h, $b, $id) = create($ng, meta => { filename => 'clip.mkv',
                                               format => 'mp4', height => 120 });
    is($st, 201, 'creation -> 201');
    ok($id, "Location names the upload ($id)");
    like($h->{'upload-expires'} // '', qr/GMT$/, 'Upload-Expires on the creation');
    my $job = $ng->get("/api/jobs/$id");
    is($job->{status}, 200, 'the job exists under /api/jobs/{id} from the creation');
    is($job->{json} && $job->{json}{input}{name}, 'clip.mkv', '... with the filename');

    is(head_offset($ng, $id), 0, 'HEAD: offset 0');
    ($st, $h) = raw($ng, 'HEAD', "/api/uploads/$id", \%TUS);
    is($h->{'upload-length'}, $len, 'HEAD: Upload-Length');
    like($h->{'cache-control'} // '', qr/no-store/, 'HEAD: Cache-Control no-store');

    ($st) = raw($ng, 'HEAD', "/api/uploads/$id", {});
    is($st, 412, 'HEAD without Tus-Resumable -> 412');
    ($st) = raw($ng, 'PATCH', "/api/uploads/$id",
                { 'Content-Type' => 'application/offset+octet-stream',
                  'Upload-Offset' => 0 }, 'x' x 10);
    is($st, 412, 'PATCH without Tus-Resumable -> 412');
    is(head_offset($ng, $id), 0, '... nothing written');

    ($st, $h) = patch($ng, $id, 5, substr($data, 5, 1000));
    is($st, 409, 'PATCH at a wrong offset -> 409');
    is($h->{'upload-offset'}, 0, '... which says the right one');
    ($st) = raw($ng, 'PATCH', "/api/uploads/$id",
                { %TUS, 'Content-Type' => 'application/octet-stream',
                  'Upload-Offset' => 0 }, 'x' x 10);
    is($st, 415, 'PATCH with another Content-Type -> 415');
    is(head_offset($ng, $id), 0, '... offset still 0');

    my $n1 = 100_000;
    my $c1 = substr($data, 0, $n1);
    ($st, $h) = patch($ng, $id, 0, $c1, 'Upload-Checksum' => 'sha1 ' . sha1_base64($c1) . '=');
    is($st, 204, 'PATCH with the right sha1 -> 204');
    is($h->{'upload-offset'}, $n1, '... Upload-Offset moves');
    like($h->{'upload-expires'} // '', qr/GMT$/, '... Upload-Expires on it');

    my $c2 = substr($data, $n1, 50_000);
    ($st, $h, $b) = patch($ng, $id, $n1, $c2,
                          'Upload-Checksum' => 'sha1 ' . sha1_base64('other') . '=');
    is($st, 460, 'PATCH with a wrong sha1 -> 460');
    like($b, qr/checksum_mismatch/, '... checksum_mismatch');
    is(head_offset($ng, $id), $n1, '... the offset did not move');
    is(input_size($ng, $id), $n1, '... and the chunk is off the file');

    ($st) = patch($ng, $id, $n1, $c2, 'Upload-Checksum' => 'md5 AAAA');
    is($st, 400, 'unsupported checksum algorithm -> 400');

    # a PATCH that breaks off keeps every byte it wrote
    my $s = raw($ng, 'PATCH', "/api/uploads/$id",
                { %OCT, 'Upload-Offset' => $n1 }, undef,
                length => 80_000, keep => 1);
    print $s substr($data, $n1, 30_000);
    $s->flush;
    VconvNginx::poll(5, sub { head_offset($ng, $id) == $n1 + 30_000 });
    # while it is open, another PATCH is refused
    ($st, $h) = patch($ng, $id, $n1 + 30_000, substr($data, $n1 + 30_000, 10));
    is($st, 423, 'a second PATCH while one runs -> 423');
    close $s;
    my $off;
    VconvNginx::poll(5, sub {
        $off = head_offset($ng, $id);
        $off == $n1 + 30_000 });
    is($off, $n1 + 30_000, 'a PATCH that broke off kept its 30000 bytes');

    # with a checksum it cannot be verified: it is dropped
    $s = raw($ng, 'PATCH', "/api/uploads/$id",
             { %OCT, 'Upload-Offset' => $off,
               'Upload-Checksum' => 'sha1 ' . sha1_base64(substr($data, $off, 40_000)) . '=' },
             undef, length => 40_000, keep => 1);
    print $s substr($data, $off, 20_000);
    $s->flush;
    sleep 0.3;
    close $s;
    my $free = VconvNginx::poll(5, sub {
        my ($st3) = patch($ng, $id, $off, substr($data, $off, 1));
        return 0 if $st3 == 423;
        $off += 1 if $st3 == 204;
        1 });
    ok($free, 'the lock goes with the broken-off PATCH');
    is(input_size($ng, $id), $off, 'a broken-off PATCH with a checksum left nothing past the offset');

    # the job runs while the upload is incomplete
    my $j = $ng->get("/api/jobs/$id")->{json} // {};
    like($j->{status} // '', qr/^(queued|running)$/,
         "the job is $j->{status} with the upload at $off of $len");

    # the rest, in 40 KB PATCHes, the job converting meanwhile
    my $seen_running = 0;
    while ($off < $len) {
        my $c = substr($data, $off, 40_000);
        ($st, $h) = patch($ng, $id, $off, $c);
        last unless $st == 204;
        $off = $h->{'upload-offset'};
        my $js = $ng->get("/api/jobs/$id")->{json} // {};
        $seen_running++ if ($js->{status} // '') eq 'running' && $off < $len;
    }
    is($off, $len, 'every PATCH taken: offset == Upload-Length');
    my %pids;
    open my $lf, '<', $ng->prefix . '/logs/tus.log' or die $!;
    my $named = 0;
    while (<$lf>) {
        $pids{$1}++ if /^(\d+) PATCH 204/;
        $named++ if /^\d+ PATCH 204 \Q$id\E (queued|running|done)$/;
    }
    close $lf;
    cmp_ok(scalar(keys %pids), '>=', 2,
           'PATCHes of the upload were taken by both workers');
    cmp_ok($named, '>', 0, '$vconv_job_id and $vconv_job_status in the access log of PATCHes');
    ok($seen_running, "the job was running while PATCHes still arrived ($seen_running)");
    $j = $ng->wait_job($id, 60) // {};
    is($j->{status}, 'done', 'the tus job is done');
    is($j->{input}{bytes}, $len, 'input.bytes is the upload');
    $ng->download($id, "$dir/tus.mp4");
    my $p = VconvNginx::probe("$dir/tus.mp4");
    is($p && $p->{video} && "$p->{video}{codec_name} $p->{video}{height}", 'h264 120',
       'output h264, height 120');
    ok($p && abs($p->{duration} - 6) < 0.2, 'output lasts 6 s (every byte arrived in order)')
        or diag(explain $p);

    ($st, $h) = raw($ng, 'HEAD', "/api/uploads/$id", \%TUS);
    is($h->{'upload-offset'}, $len, 'HEAD after the end: the full offset');
    ($st) = patch($ng, $id, $len, 'x');
    is($st, 413, 'a byte past Upload-Length -> 413');
}

# --- creation-with-upload ----------------------------------------------------
{
    my $first = substr($data, 0, 70_000);
    my ($st, $h, $b) = raw($ng, 'POST', '/api/uploads/',
        { %OCT, 'Upload-Length' => $len,
          'Upload-Metadata' => meta(format => 'mp4', height => 96) }, $first);
    is($st, 201, 'creation with a body -> 201');
    is($h->{'upload-offset'}, 70_000, '... Upload-Offset is the body');
    my ($cid) = ($h->{location} // '') =~ m{/([^/]+)$};
    my $off = 70_000;
    while ($off < $len) {
        ($st, $h) = patch($ng, $cid, $off, substr($data, $off, 200_000));
        last unless $st == 204;
        $off = $h->{'upload-offset'};
    }
    my $j = $ng->wait_job($cid, 60) // {};
    is($j->{status}, 'done', 'creation-with-upload job done');
}

# --- termination -------------------------------------------------------------
{
    my $sd = do { local $/; open my $fh, '<:raw', $slow or die $!; <$fh> };
    my ($st, $h, $b, $tid) = create($ng, length => length $sd,
                                    meta => { format => 'webm', height => 240 });
    ($st) = patch($ng, $tid, 0, substr($sd, 0, int(length($sd) * 0.6)));
    is($st, 204, 'a slow upload 60 % in');
    VconvNginx::poll(10, sub {
        (($ng->get("/api/jobs/$tid")->{json} // {})->{status} // '') eq 'running' });
    is(($ng->get("/api/jobs/$tid")->{json} // {})->{status}, 'running',
       '... converting');
    ($st) = raw($ng, 'DELETE', "/api/uploads/$tid", \%TUS);
    is($st, 204, 'DELETE of the upload while converting -> 204');
    is($ng->get("/api/jobs/$tid")->{status}, 404, '... the job is gone');
    ok(!-e $ng->store . "/$tid", '... and its folder');
    ($st) = raw($ng, 'HEAD', "/api/uploads/$tid", \%TUS);
    ok($st == 404 || $st == 410, "... HEAD -> $st");
    ($st) = patch($ng, $tid, int(length($sd) * 0.6), 'x');
    is($st, 404, '... PATCH -> 404');

    # DELETE of the job ends the upload too
    ($st, $h, $b, $tid) = create($ng, meta => { format => 'mp4' });
    ($st) = patch($ng, $tid, 0, substr($data, 0, 10_000));
    is($ng->delete($tid)->{status}, 204, 'DELETE /api/jobs/{id} of an upload -> 204');
    ($st) = raw($ng, 'HEAD', "/api/uploads/$tid", \%TUS);
    is($st, 404, '... its upload is gone');
    ok(!-e $ng->store . "/$tid", '... with its folder');
}

# --- CORS ------------------------------------------------------------------
{
    my ($st, $h) = raw($ng, 'OPTIONS', '/api/uploads/',
        { Origin => 'http://app.example',
          'Access-Control-Request-Method' => 'PATCH',
          'Access-Control-Request-Headers' => 'tus-resumable, upload-offset' });
    is($st, 204, 'CORS preflight -> 204');
    is($h->{'access-control-allow-origin'}, 'http://app.example', '... origin allowed');
    like($h->{'access-control-allow-methods'} // '', qr/PATCH/, '... PATCH allowed');
    like($h->{'access-control-allow-headers'} // '', qr/Upload-Offset/i,
         '... tus headers allowed');
    ($st, $h) = raw($ng, 'HEAD', "/api/uploads/$id",
                    { %TUS, Origin => 'http://app.example' });
    like($h->{'access-control-expose-headers'} // '',
         qr/Location.*Upload-Offset.*Upload-Length.*Upload-Expires.*Tus-/,
         'HEAD exposes Location, Upload-Offset, Upload-Length, Upload-Expires, Tus-*');
    ($st, $h) = raw($ng, 'HEAD', "/api/uploads/$id",
                    { %TUS, Origin => 'http://evil.example' });
    ok(!exists $h->{'access-control-allow-origin'}, 'another origin is not allowed');
}

$ng->assert_clean_log;
$ng->stop;

# --- expiry, quota, queue ------------------------------------------------------
{
    my $e = VconvNginx->new(
        server => "location /api/uploads/ { vconv_tus; vconv_tus_expires 2s;"
                  . " client_max_body_size 50m; }\n",
        http => "vconv_max_queue 2;\n",
        store_opts => 'max_size=3m ttl=1h')->start;
    my ($st, $h, $b, $xid) = create($e, meta => { format => 'mp4' });
    is($st, 201, 'an upload that will expire');
    ($st, $h) = patch($e, $xid, 0, substr($data, 0, 100_000));
    is($st, 204, '... 100000 bytes in');
    my $exp = $h->{'upload-expires'};
    ok($exp, "... Upload-Expires: $exp");
    my $gone = VconvNginx::poll(10, sub {
        my ($s2) = raw($e, 'HEAD', "/api/uploads/$xid", \%TUS);
        $s2 == 404 && !-e $e->store . "/$xid" });
    ok($gone, 'idle past vconv_tus_expires: the upload and its folder are gone');
    is($e->get("/api/jobs/$xid")->{status}, 404, '... and its job');

    ($st, $h, $b) = create($e, length => 4 * 1024 * 1024, meta => { format => 'mp4' });
    is($st, 507, 'Upload-Length over the store quota -> 507');
    my ($s1, undef, undef, $q1) = create($e, meta => { format => 'mp4' });
    my ($s2, undef, undef, $q2) = create($e, meta => { format => 'mp4' });
    ($st, $h) = create($e, meta => { format => 'mp4' });
    is("$s1 $s2 $st", '201 201 503', 'the queue is checked at creation -> 503');
    ok($h->{'retry-after'}, '... with Retry-After');
    raw($e, 'DELETE', "/api/uploads/$_", \%TUS) for grep { $_ } $q1, $q2;
    $e->assert_clean_log;
    $e->stop;
}

# --- between PATCHes the job waits: no "stalled" before the tus expiry ------
{
    my $w = VconvNginx->new(
        server => "location /api/uploads/ { vconv_tus; vconv_tus_expires 60s;"
                  . " client_max_body_size 50m; }\n",
        http => "vconv_stall_timeout 2s;\n")->start;
    my ($st, $h, $b, $wid) = create($w, meta => { format => 'mp4', height => 96 });
    my $half = int($len / 2);
    ($st) = patch($w, $wid, 0, substr($data, 0, $half));
    is($st, 204, 'half an upload in, with vconv_stall_timeout 2s');
    sleep 5;
    my $j = $w->get("/api/jobs/$wid")->{json} // {};
    is($j->{status}, 'running', 'after 5 s without a PATCH the job still waits, not stalled')
        or diag(explain $j);
    ($st) = patch($w, $wid, $half, substr($data, $half));
    is($st, 204, 'the rest arrives');
    $j = $w->wait_job($wid, 60) // {};
    is($j->{status}, 'done', '... and the job is done');
    $w->assert_clean_log;
    $w->stop;
}

# --- HTTP/2 PATCH --------------------------------------------------------------
{
    my $h2 = VconvNginx->new(server => $tus_loc, http2 => 1)->start;
    my $md = do { local $/; open my $fh, '<:raw', $mp4 or die $!; <$fh> };
    my $r = $h2->_curl('POST', '/api/uploads/',
        headers => [ 'Tus-Resumable: 1.0.0', 'Upload-Length: ' . length($md),
                     'Upload-Metadata: ' . meta(format => 'mp4', height => 96,
                                               filename => 'h2.mp4') ]);
    is($r->{status}, 201, 'HTTP/2 creation -> 201');
    like($r->{status_line} // '', qr{^HTTP/2}, '... over HTTP/2');
    my ($hid) = ($r->{headers}{location} // '') =~ m{/([^/]+)$};
    my $half = int(length($md) / 2);
    open my $p1, '>:raw', "$dir/p1" or die; print $p1 substr($md, 0, $half); close $p1;
    open my $p2, '>:raw', "$dir/p2" or die; print $p2 substr($md, $half); close $p2;
    $r = $h2->post_file("/api/uploads/$hid", "$dir/p1", method => 'PATCH',
        content_type => 'application/offset+octet-stream',
        headers => [ 'Tus-Resumable: 1.0.0', 'Upload-Offset: 0' ]);
    is($r->{status}, 204, 'HTTP/2 PATCH -> 204');
    is($r->{headers}{'upload-offset'}, $half, '... offset moved');
    $r = $h2->post_file("/api/uploads/$hid", "$dir/p2", method => 'PATCH',
        content_type => 'application/offset+octet-stream',
        headers => [ 'Tus-Resumable: 1.0.0', "Upload-Offset: $half",
                     'Upload-Checksum: sha1 ' . sha1_base64(substr($md, $half)) . '=' ]);
    is($r->{status}, 204, 'HTTP/2 PATCH with a checksum -> 204');
    is($r->{headers}{'upload-offset'}, length $md, '... complete');
    my $j = $h2->wait_job($hid, 30) // {};
    is($j->{status}, 'done', 'HTTP/2 tus job done');
    $h2->download($hid, "$dir/h2.mp4");
    my $p = VconvNginx::probe("$dir/h2.mp4");
    is($p && $p->{video} && $p->{video}{height}, 96, 'HTTP/2 tus output 96 high');
    $h2->assert_clean_log;
    $h2->stop;
}

done_testing;
