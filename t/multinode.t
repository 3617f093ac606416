#!/usr/bin/perl
# Two nodes and a front on loopback.  The front's nginx.conf is
# conf.front.example itself, with only hosts, ports and paths substituted:
# the example is what is tested.  Uploads (POST, PUT, chunked) through the
# front land on both nodes; each job's JSON, events, output (Range, HEAD)
# and DELETE reach the node named in its id; an id of no known node gets
# 404 JSON from the front itself; wait=1 answers the file through the
# front; a slow upload through the front is a running job on its node, its
# input growing, while the client still sends (proxy_request_buffering
# off), and its events reach the client meanwhile, and the node converts
# before the upload ends.
# VCONV_DEBUG=1 shows the job JSON during the slow upload.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;
use VconvMedia;

my $root = "$FindBin::Bin/..";
my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $ID = qr/^(node1|node2)-[0-9a-f]{32}$/;

sub slurp { open my $fh, '<', $_[0] or return ''; binmode $fh; local $/; <$fh> }

# --- the nodes, then the front from conf.front.example ----------------------

my %node;
for my $name (qw(node1 node2)) {
    $node{$name} = VconvNginx->new(http => "    vconv_node $name;\n")->start;
}

my $example = slurp("$root/conf.front.example");
ok(length $example, 'conf.front.example is there') or BAIL_OUT('no conf.front.example');
unlike($example, qr/^\s*load_module/m, 'the front loads no module');

my ($p1, $p2) = ($node{node1}->port, $node{node2}->port);
my $user = $> == 0 ? 'user root root;' : '';
my @subst = (
    # [what, replacement, how many times it must be there]
    [qr/^user www-data;$/m,                 $user,                               1],
    [qr/^worker_processes auto;$/m,          'worker_processes 2;',               1],
    [qr{^error_log /var/log/nginx/error\.log warn;$}m,
                                             'error_log %%PREFIX%%/error.log info;', 1],
    [qr{^pid /run/nginx\.pid;$}m,            "pid %%PREFIX%%/nginx.pid;\ndaemon off;", 1],
    [qr{access_log /var/log/nginx/access\.log vconv_front;}, join("\n    ",
        'access_log %%PREFIX%%/logs/access.log vconv_front;',
        'client_body_temp_path %%PREFIX%%/tmp/body;',
        'proxy_temp_path %%PREFIX%%/tmp/proxy;',
        'fastcgi_temp_path %%PREFIX%%/tmp/fastcgi;',
        'uwsgi_temp_path %%PREFIX%%/tmp/uwsgi;',
        'scgi_temp_path %%PREFIX%%/tmp/scgi;'),                                1],
    [qr/\bserver node1:8080;/,               "server 127.0.0.1:$p1;",             2],
    [qr/\bserver node2:8080;/,               "server 127.0.0.1:$p2;",             2],
    [qr/\blisten 80;/,                       'listen 127.0.0.1:%%PORT%%;',        1],
    [qr{\broot /usr/share/vconv/html;},      'root %%HTML%%;',                    1],
);
my $conf = $example;
for my $s (@subst) {
    my ($re, $to, $want) = @$s;
    my $n = () = $conf =~ /$re/g;
    is($n, $want, "conf.front.example has $re ${want}x");
    $conf =~ s/$re/$to/g;
}
unlike($conf, qr/\bnode[12]:8080\b/, 'no node host left unsubstituted');

my $front = VconvNginx->new(conf => $conf, html_root => "$root/html",
                            workers => 2)->start;
pass('the front starts with conf.front.example');

my $mp4 = VconvMedia::make_media($dir, 'mp4', name => 'clip.mp4');
my $wav = VconvMedia::make_media($dir, 'wav', name => 'tone.wav');

# --- what the front serves itself ------------------------------------------

{
    my $r = $front->get('/');
    is($r->{status}, 200, 'GET / -> the page from the front');
    like($r->{body}, qr/<html|<!doctype/i, '... it is the page');
    $r = $front->get('/api/presets');
    is($r->{status}, 200, 'GET /api/presets through the front -> 200');
    ok(ref $r->{json} eq 'HASH', '... JSON from a node');
    $r = $front->get('/api/metrics');
    VconvNginx::is_api_error($r, 404, 'not_found',
                             '/api/metrics is not proxied by the front (404 JSON)');
}

# --- uploads spread over both nodes ------------------------------------------

my @kinds = (
    [post => {}],
    [put  => { method => 'PUT' }],
    [chunked => { chunked => 1 }],
    [post => {}],
);
my @pending = map {
    my ($what, $o) = @$_;
    $front->post_file('/api/jobs?format=mp4&height=120', $mp4, name => 'clip.mp4',
                      async => 1, %$o);
} @kinds;
my @jobs;
for my $i (0 .. $#pending) {
    my $r = $pending[$i]->wait(40);
    my $what = $kinds[$i][0];
    is($r->{status}, 202, "$what upload through the front -> 202");
    my $id = ($r->{json} // {})->{id} // '';
    like($id, $ID, "... id carries a node name ($id)");
    is($r->{headers}{location}, "/api/jobs/$id", '... Location passed as is');
    push @jobs, $id if $id =~ $ID;
}
my %on = map { /^(node\d)-/ ? ($1 => 1) : () } @jobs;
ok($on{node1} && $on{node2}, 'uploads landed on both nodes ('
   . join(' ', sort keys %on) . ')');

for my $id (@jobs) {
    my ($name) = $id =~ /^(node\d)-/;
    my ($other) = grep { $_ ne $name } keys %node;
    is($node{$name}->get("/api/jobs/$id")->{status}, 200, "$id is on $name");
    is($node{$other}->get("/api/jobs/$id")->{status}, 404, "... and not on $other");

    my $job = $front->wait_job($id, 30);
    is($job && $job->{status}, 'done', "$id done (JSON through the front)");
    is($job && $job->{id}, $id, '... the JSON is the job\'s');

    my $ev = $front->get("/api/jobs/$id/events", max_time => 15, no_buffer => 1);
    is($ev->{status}, 200, '... events through the front');
    like($ev->{headers}{'content-type'} // '', qr{^text/event-stream}, '... as text/event-stream');
    like($ev->{body}, qr/^event: done\ndata: \{.*"status":"done"/m, '... ending with the done event');

    my $out = "$dir/$id.mp4";
    my $r = $front->download($id, $out);
    is($r->{status}, 200, '... output through the front');
    my $p = VconvNginx::probe($out);
    ok($p && $p->{video} && $p->{video}{codec_name} eq 'h264'
       && $p->{video}{height} == 120, '... ffprobe: H.264, 120 px high');
    my $data = slurp($out);

    $r = $front->get("/api/jobs/$id/output", range => '10-109');
    is($r->{status}, 206, '... Range through the front -> 206');
    is($r->{body}, substr($data, 10, 100), '... the right 100 bytes');
    is($r->{headers}{'content-range'}, "bytes 10-109/" . length($data), '... Content-Range');

    $r = $front->head("/api/jobs/$id/output");
    is($r->{status}, 200, '... HEAD through the front');
    is($r->{headers}{'content-length'}, length($data), '... with the length');

    $r = $front->delete($id);
    is($r->{status}, 204, '... DELETE through the front -> 204');
    VconvNginx::is_api_error($front->get("/api/jobs/$id"), 404, 'not_found',
                             '... then 404 through the front');
    is($node{$name}->get("/api/jobs/$id")->{status}, 404, "... and gone from $name");
}

# --- ids of no known node ----------------------------------------------------

{
    my $hex = join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
    for my $path ("/api/jobs/node3-$hex", "/api/jobs/node3-$hex/output",
                  "/api/jobs/node3-$hex/events", "/api/jobs/$hex",
                  "/api/jobs/node1-$hex-x", '/api/jobs/') {
        VconvNginx::is_api_error($front->get($path), 404, 'not_found',
                                 "GET $path -> 404 JSON from the front");
    }
    VconvNginx::is_api_error($front->delete("/api/jobs/node3-$hex"), 404, 'not_found',
                             'DELETE of a node3 id -> 404 JSON from the front');
    # a well-formed id of a known node that has no such job: the node's 404
    VconvNginx::is_api_error($front->get("/api/jobs/node2-$hex"), 404, 'not_found',
                             'unknown job of node2 -> the node\'s 404');
}

# --- wait=1 through the front --------------------------------------------------

{
    my $out = "$dir/tone.mp3";
    my $r = $front->post_file('/api/jobs?format=mp3&wait=1', $wav, name => 'tone.wav',
                              output => $out, max_time => 40);
    is($r->{status}, 200, 'wait=1 through the front -> 200');
    my $p = VconvNginx::probe($out);
    ok($p && $p->{audio} && $p->{audio}{codec_name} eq 'mp3',
       '... the answer is the MP3 (ffprobe)');
    ok($p && abs(($p->{duration} // 0) - 2) < 0.2, '... of the input\'s length');
}

# --- a slow upload is converting on its node while it streams ----------------

{
    my $mkv = VconvMedia::make_media($dir, 'mkv', duration => 12, name => 'long.mkv');
    my $size = -s $mkv;
    my $rate = int($size / 6);        # about 6 s of upload
    my %before = map { my $n = $_; ($n => { map { $_ => 1 } @{ $node{$n}->store_entries } }) }
                 keys %node;
    my $t0 = time;
    my $up = $front->post_file('/api/jobs?format=mp4&height=120', $mkv, name => 'long.mkv',
                               async => 1, limit_rate => $rate, max_time => 40);
    my ($name, $id);
    VconvNginx::poll(4, sub {
        for my $n (keys %node) {
            my ($new) = grep { !$before{$n}{$_} } @{ $node{$n}->store_entries };
            if ($new) { ($name, $id) = ($n, $new); return 1 }
        }
        return 0;
    });
    ok($id, sprintf('the upload has a job folder on a node after %.1f s of %.0f',
                    time - $t0, $size / $rate))
        or diag('node stores: ' . join ' ', map { @{ $node{$_}->store_entries } } keys %node);
    $id //= 'none';
    $name //= 'none';
    like($id, qr/^\Q$name\E-[0-9a-f]{32}$/, "... named after its node ($id)");

    my $events = $front->get("/api/jobs/$id/events", async => 1, no_buffer => 1,
                             max_time => 40, output => "$dir/events.txt");

    # the node has the job, running, its input growing: the front passes
    # the body on as it comes (with request buffering the node would see
    # nothing until the client is done)
    my ($seen, @bytes);
    VconvNginx::poll(3, sub {
        return 'ended' if $up->done;
        my $j = $front->get("/api/jobs/$id", max_time => 2)->{json} // {};
        $seen = $j->{status} // '';
        push @bytes, $j->{input}{bytes}
            if ref $j->{input} eq 'HASH' && defined $j->{input}{bytes};
        diag(sprintf "%.2f %s", time - $t0, VconvNginx->json->encode($j))
            if $ENV{VCONV_DEBUG};
        return $seen eq 'running' && @bytes >= 2 && $bytes[-1] > $bytes[0];
    }, 0.3);
    my $still = !$up->done;
    is($seen, 'running', sprintf('status through the front is running while the '
                                 . 'upload goes on (%.1f s in)', time - $t0));
    ok($still, '... the upload was still going');
    ok(@bytes >= 2 && $bytes[-1] > $bytes[0] && $bytes[-1] < $size,
       '... and the node\'s input grows as it arrives ('
       . join(' -> ', @bytes ? @bytes[0, -1] : ()) . " of $size bytes)");
    my $ev_mid = VconvNginx::poll(3, sub {
        return 'ended' if $up->done;
        return slurp("$dir/events.txt") =~ /^event: progress\ndata: \{/m;
    }, 0.1);
    ok($ev_mid && $ev_mid ne 'ended',
       '... its event stream reaches the client through the front while it uploads')
        or diag('events so far: ' . substr(slurp("$dir/events.txt"), 0, 300));

    # the node converting before the upload ends
    {
        my ($fmt, $prog);
        my $conv = VconvNginx::poll(4, sub {
            return 'ended' if $up->done;
            my $j = $front->get("/api/jobs/$id", max_time => 2)->{json} // {};
            $fmt = ref $j->{input} eq 'HASH' ? $j->{input}{format} : undef;
            $prog = $j->{progress} // 0;
            return defined $fmt && $prog > 0;
        }, 0.2);
        ok($conv && $conv ne 'ended',
           sprintf('the node converts while the upload goes on (input format %s, '
                   . 'progress %s, %.1f s in)', $fmt // 'null', $prog // '?',
                   time - $t0));
    }

    my $r = $up->wait(40);
    is($r->{status}, 202, sprintf('the slow upload -> 202 after %.1f s', $r->{time}));
    is(($r->{json} // {})->{id}, $id, '... the same job');
    my $job = $front->wait_job($id, 30);
    is($job && $job->{status}, 'done', '... converted');
    my $ev = $events->wait(15);
    like(slurp("$dir/events.txt"), qr/^event: done\n/m, '... the event stream ends with done');
    my $out = "$dir/long.mp4";
    is($front->download($id, $out)->{status}, 200, '... output through the front');
    my $p = VconvNginx::probe($out);
    ok($p && abs(($p->{duration} // 0) - 12) < 0.5, '... 12 s long (ffprobe)');
    is($front->delete($id)->{status}, 204, '... deleted through the front');
}

# --- the end ---------------------------------------------------------------------

for my $ng ($front, $node{node1}, $node{node2}) {
    $ng->assert_clean_log;
}
$_->stop for $front, $node{node1}, $node{node2};

done_testing;
