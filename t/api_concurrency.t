#!/usr/bin/perl
# 8 concurrent uploads on 2 workers all finish with the right outputs, and
# every worker answers the same for every job (the shared zone).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');

# reuseport: each new connection goes to a worker by its source port, so
# repeated requests reach both workers
my $ng = VconvNginx->new(
    workers => 2,
    listen_opts => 'reuseport',
    server => "        add_header X-Worker \$pid always;\n",
)->start;
is(scalar @{ $ng->worker_pids }, 2, 'two workers');

my @heights = (120, 96, 144, 180, 240, 72, 48, 168);
my @pending = map {
    $ng->post_file("/api/jobs?format=mp4&height=$_", $mp4, name => "c$_.mp4",
                   async => 1)
} @heights;
my @ids;
for my $i (0 .. $#heights) {
    my $r = $pending[$i]->wait(60);
    is($r->{status}, 202, "concurrent upload $i (height $heights[$i]) -> 202");
    push @ids, $r->{json} ? $r->{json}{id} : 'none';
}
my %uniq = map { $_ => 1 } @ids;
is(scalar keys %uniq, 8, 'eight different ids');

my %workers;
for my $i (0 .. $#ids) {
    my $h = $heights[$i];
    my $job = $ng->wait_job($ids[$i], 90) // {};
    is($job->{status}, 'done', "job $i done");
    is($job->{input} && $job->{input}{name}, "c$h.mp4", "job $i has its own name");
    my $r = $ng->download($ids[$i], "$dir/c$i.mp4");
    is($r->{status}, 200, "job $i output");
    $workers{ $r->{headers}{'x-worker'} // '?' }++;
    my $p = VconvNginx::probe("$dir/c$i.mp4");
    my $w = $h * 4 / 3;
    is($p && $p->{video} && "$p->{video}{codec_name} $p->{video}{width}x$p->{video}{height}",
       "h264 ${w}x$h", "job $i output h264 ${w}x$h");
    ok($p && abs($p->{duration} - 2) <= 0.1, "job $i duration ~2 s");
    is(-s "$dir/c$i.mp4", $job->{output}{bytes}, "job $i output.bytes");

    # the same answer from repeated requests (new connection each)
    my $same = 1;
    for (1 .. 4) {
        my $g = $ng->get("/api/jobs/$ids[$i]");
        $workers{ $g->{headers}{'x-worker'} // '?' }++;
        $same &&= $g->{status} == 200 && $g->{json}
            && $g->{json}{status} eq 'done'
            && $g->{json}{output}{bytes} == $job->{output}{bytes}
            && $g->{json}{id} eq $ids[$i];
    }
    ok($same, "job $i: repeated GETs agree");
}
my @seen = grep { $_ ne '?' } keys %workers;
cmp_ok(scalar @seen, '>=', 2, 'answers came from both workers: '
       . join ' ', map { "$_=$workers{$_}" } sort keys %workers);

$ng->assert_clean_log;
$ng->stop;
done_testing;
