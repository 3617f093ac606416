#!/usr/bin/perl
# Issue 18, item 1: the zone cannot be filled for free.
#  - 10,000 junk uploads from one client (each taken, then failed) leave
#    the zone usable for a second client at once, and nothing in the
#    store: a failed job keeps no folder, and its small record goes after
#    vconv_failed_ttl, or sooner when the zone needs the room;
#  - a zone full of jobs worth keeping answers 503 zone_full with
#    Retry-After (not queue_full), and takes uploads again once there is
#    room.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;
use VconvAbuse;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4', size => '160x120', duration => 1);
my $wav = VconvNginx::make_media($dir, 'wav', duration => 1);

my $JUNK = $ENV{VCONV_ABUSE_JUNK} || 10_000;

sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$fh> }

# --- 10,000 junk uploads ----------------------------------------------------
{
    # a 64k zone holds about 50 records: the junk is 200 times that.  The
    # failed TTL is longer than the flood may stall: without eviction the
    # zone stays full of junk records until they expire
    my $ng = VconvNginx->new(
        workers => 1, zone => '64k',
        http => "    vconv_isolation thread;\n"
              . "    vconv_failed_ttl 20s;\n"
              . "    vconv_max_queue 100000;\n",
    )->start;

    my $c = VconvAbuse->new($ng->port);
    my (%status, %code, $bad503, $taken);
    my $last_progress = time;
    srand(18);
    $taken = 0;
    while ($taken < $JUNK) {
        my $junk = join '', map { chr(int rand 256) } 1 .. 100;
        my $r = $c->request('POST', '/api/jobs?format=mp4', $junk,
                            'X-File-Name' => "junk$taken.bin");
        $status{$r->{status}}++;
        if ($r->{status} == 202) {
            $taken++;
            $last_progress = time;
            next;
        }
        my $e = $r->{json} && $r->{json}{error} ? $r->{json}{error}{code} : '';
        $code{$e}++;
        # a flood outruns the transcodes: jobs in flight fill the zone,
        # which says so and when to come back
        $bad503++ unless $r->{status} == 503 && $e eq 'zone_full'
            && ($r->{headers}{'retry-after'} // '') =~ /^[1-9]\d*$/;
        last if time - $last_progress > 10;
        sleep 0.02;
    }
    $c->close;

    is($taken, $JUNK, "$JUNK junk uploads from one client were taken (202)")
        or diag(explain({ status => \%status, codes => \%code }));
    ok(!$bad503, 'every refusal meanwhile was 503 zone_full with Retry-After')
        or diag(explain(\%code));

    my $m = VconvAbuse::metrics($ng);
    cmp_ok($m->{vconv_jobs_accepted_total}, '==', $JUNK,
           'vconv_jobs_accepted_total counts them');
    cmp_ok($m->{vconv_jobs_in_zone}, '<', 200,
           "the zone holds a few of them ($m->{vconv_jobs_in_zone})");

    # the second client, right away: the failed junk makes room for it
    my $r = $ng->post_file('/api/jobs?format=mp4&height=96', $mp4,
                           name => 'real.mp4');
    is($r->{status}, 202, 'a second client\'s upload is taken at once')
        or diag($r->{body});
    my $id = $r->{json} && $r->{json}{id};
    my $job = $id ? $ng->wait_job($id, 60) : {};
    is($job->{status}, 'done', '... and converted');

    # the junk keeps no folder; its records expire after vconv_failed_ttl
    my $left = VconvNginx::poll(40, sub {
        my @e = grep { !$id || $_ ne $id } @{$ng->store_entries};
        my $mm = VconvAbuse::metrics($ng);
        !@e && $mm->{'vconv_jobs{state="failed"}'} == 0
            && $mm->{vconv_jobs_in_zone} == 1 ? 1 : 0;
    });
    ok($left, 'after the failed TTL: the store holds only the real job, '
              . 'the zone only its record')
        or diag('store: ' . scalar(@{$ng->store_entries}) . ' entries; '
                . explain(VconvAbuse::metrics($ng)));

    is($ng->delete($id)->{status}, 204, 'the real job is deleted') if $id;
    is_deeply($ng->store_entries, [], 'the store is empty');

    $m = VconvAbuse::metrics($ng);
    my $sum = 0;
    $sum += $m->{"vconv_jobs_finished_total{result=\"$_\"}"}
        for qw(done failed canceled);
    is($sum, $JUNK + 1, 'accepted = done + failed + canceled once all ended');
    is($m->{vconv_jobs_accepted_total}, $JUNK + 1, '... accepted counted');
    $ng->assert_clean_log;
    $ng->stop;
}

# --- a zone full of jobs worth keeping: 503 zone_full + Retry-After --------
{
    my $ng = VconvNginx->new(
        workers => 1, zone => '64k', store_opts => 'ttl=1h',
        http => "    vconv_isolation thread;\n",
    )->start;
    my $body = slurp($wav);
    my $c = VconvAbuse->new($ng->port);
    my ($full, @ids);
    for my $n (1 .. 500) {
        my $r = $c->request('POST', '/api/jobs?format=wav&wait=1&keep=1',
                            $body, 'X-File-Name' => "t$n.wav");
        if ($r->{status} == 200) {
            push @ids, $r->{headers}{'x-vconv-job-id'};
            next;
        }
        $full = $r;
        last;
    }
    $c->close;
    ok($full, 'a zone of done jobs fills up after ' . scalar(@ids) . ' jobs')
        or BAIL_OUT('the zone never filled');
    VconvNginx::is_api_error($full, 503, 'zone_full', 'full zone -> 503 zone_full');
    my $ra = $full->{headers}{'retry-after'} // '';
    like($ra, qr/^[1-9]\d*$/, "... with Retry-After ($ra)");
    cmp_ok($ra, '<=', 3601, '... no later than the first record expires');
    is(scalar(grep { defined } @ids), scalar(@ids),
       'keep=1 gave every job id (X-Vconv-Job-Id)');
    is(scalar(@{$ng->store_entries}), scalar(@ids),
       'every kept job has its folder');

    # done jobs are not evicted: a refused upload costs nobody their file
    my $job = $ng->wait_job($ids[0], 10);
    is($job->{status}, 'done', 'the first job is still there');

    is($ng->delete($ids[0])->{status}, 204, 'one job deleted');
    my $r = $ng->post_file('/api/jobs?format=wav', $wav, name => 'after.wav');
    is($r->{status}, 202, 'then an upload is taken again') or diag($r->{body});

    my $m = VconvAbuse::metrics($ng);
    is($m->{'vconv_job_errors_total{code="zone_full"}'}, 1,
       'the refusal is counted as zone_full');
    $ng->assert_clean_log;
    $ng->stop;
}

done_testing();
