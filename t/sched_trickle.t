#!/usr/bin/perl
# Slow uploads never starve the pool (issue 11): eight uploads trickling
# one byte every 2 s hold no slot and no pool thread (default slots and
# pool: one per CPU), so a normal job still finishes while they go on.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');

my $ng = VconvNginx->new(workers => 2)->start;
my $r;

# --- eight trickling uploads and a normal job ---------------------------

my @trickle;
for my $i (1 .. 8) {
    my $s = $ng->raw_upload('/api/jobs?format=mp4', VconvNginx::_slurp($mp4),
                            1, length => 100000, name => "trickle$i.mp4");
    push @trickle, $s;
}

ok(VconvNginx::poll(20, sub { @{ $ng->store_entries } >= 8 }),
   'eight trickling jobs exist');

my $n = $ng->post_file('/api/jobs?format=mp4&height=96', $mp4,
                       name => 'normal.mp4', async => 1, max_time => 200);
my $head = VconvNginx::_slurp($mp4);
my ($sent, $next) = (1, time + 2);
until ($n->done) {
    if (time >= $next) {
        print $_ substr($head, $sent, 1) for @trickle;
        $sent++;
        $next += 2;
    }
    sleep 0.1;
    last if $sent > 100;
}
$r = $n->wait(5);
is($r->{status}, 202, 'the normal upload -> 202 while eight trickle');
my $nid = $r->{json} ? $r->{json}{id} : '';
my $nj;
VconvNginx::poll(180, sub {
    print $_ substr($head, $sent, 1) for @trickle;
    $sent++;
    $nj = $ng->get("/api/jobs/$nid")->{json} // {};
    return 1 if $VconvNginx::FINAL{ $nj->{status} // "" };
    sleep 1.9;
    return 0;
});
is($nj && $nj->{status}, 'done', 'the normal job is done while eight trickle');

my $still = 0;
for my $s (@trickle) {
    my $buf;
    $s->blocking(0);
    my $got = sysread($s, $buf, 1024);
    $still++ if !defined $got;    # EAGAIN: no answer yet, still uploading
}
is($still, 8, 'the eight trickling uploads are still going on');

close $_ for @trickle;
ok(VconvNginx::poll(30, sub {
    my @e = grep { $_ ne $nid } @{ $ng->store_entries };
    return !@e;
}), 'the aborted trickles leave nothing in the store');

$ng->assert_clean_log;
$ng->stop;

# --- vconv_min_upload_rate: a trickle gets 408 too_slow -----------------

$ng = VconvNginx->new(workers => 2,
                      http => "    vconv_min_upload_rate 10k;\n")->start;

my $s = $ng->raw_upload('/api/jobs?format=mp4', $head, 1000,
                        length => 100000, name => 'slow.mp4');
my $answer = '';
my $deadline = time + 60;
$s->blocking(0);
my $i = 1000;
while (time < $deadline && $answer !~ /\r\n\r\n.*\}/s) {
    my $buf;
    my $got = sysread($s, $buf, 4096);
    $answer .= $buf if $got;
    last if defined $got && $got == 0;
    print $s substr($head, $i++, 1) if $i < 2000;
    sleep 0.5;
}
like($answer, qr{^HTTP/1\.1 408 }, 'an upload under the rate -> 408');
like($answer, qr{"code":"too_slow"}, 'error code too_slow');
close $s;

$r = $ng->post_file('/api/jobs?format=mp4&height=96', $mp4,
                    name => 'fast.mp4');
is($r->{status}, 202, 'a fast upload -> 202');
my $fj = $ng->wait_job($r->{json} ? $r->{json}{id} : '', 120) // {};
is($fj->{status}, 'done', 'the fast upload is converted');
ok(VconvNginx::poll(30, sub {
    !grep { $_ ne $fj->{id} } @{ $ng->store_entries } }),
   'the slow upload left nothing in the store');
my $m = $ng->get('/api/metrics');
like($m->{body}, qr/^vconv_job_errors_total\{code="too_slow"\} 1$/m,
     'too_slow counted once')
    or diag(join "\n", grep { /too_slow/ } split /\n/, $m->{body});

$ng->assert_clean_log;
$ng->stop;
done_testing;
